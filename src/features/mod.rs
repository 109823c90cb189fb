//! Stage 2 of the data flow: frozen backbones turn images into feature vectors,
//! computed once per image content and cached.

pub mod backbone;
pub mod cpu_gate;
pub mod depthwise;
pub mod depthwise_taps;
pub mod efficientnet_lite;
pub mod extract;
pub mod feature_set;
mod item_msg;
pub mod lite_cpu;
pub mod mapped;
pub mod params;
pub mod registry;
pub mod shard;
pub mod shard_spec;
pub mod st_file;
pub mod store;
pub mod store_io;
pub mod subset;
pub mod synthetic;
pub mod timm;
pub mod variant;
