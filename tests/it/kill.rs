//! `kill -9` while an ensemble is being replaced: `ensembles/<name>/` is
//! always a complete ensemble, the old one or the new one, never half. A
//! child process (this test binary, re-executed on an ignored test) saves
//! two ensembles in turn under one name until it is killed at a random time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ovr::ensemble::{load, save, Manifest};
use rand::{Rng, SeedableRng};

use super::train::{blobs, config, train};

const DIR_VAR: &str = "OVR_TEST_SAVE_LOOP_DIR";

fn trained(name: &str) -> (Manifest, ovr::ensemble::Weights) {
    let tr = blobs("train", &[30, 20, 10], 5, 3);
    let va = blobs("val", &[10, 8, 5], 5, 4);
    let cfg = config(&["train.c_grid=[0.1]", "train.multiclass_c_grid=[0.1]"]);
    let o = train(&cfg, &tr, &va).unwrap();
    (
        Manifest::from_training(name, &cfg, &tr, &o).unwrap(),
        o.weights,
    )
}

#[test]
#[ignore = "the child process of kill_9_while_saving_leaves_the_old_or_the_new_ensemble"]
fn save_loop_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let dir = Path::new(&dir);
    let (a, wa) = trained("a");
    let (b, wb) = trained("b");
    loop {
        save(dir, &a, &wa).unwrap();
        save(dir, &b, &wb).unwrap();
    }
}

#[test]
fn kill_9_while_saving_leaves_the_old_or_the_new_ensemble() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blobs");
    let (a, wa) = trained("a");
    save(&dir, &a, &wa).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let exe = std::env::current_exe().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..15 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill::save_loop_child",
                "--ignored",
                "--test-threads=1",
            ])
            .env(DIR_VAR, &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(100..400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let e = load(&dir).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            e.manifest.name == "a" || e.manifest.name == "b",
            "round {round}: {}",
            e.manifest.name
        );
        seen.insert(e.manifest.name);
    }
    // The child did replace the ensemble (the kills did not all come first).
    assert_eq!(seen.len(), 2, "{seen:?}");
}
