//! Report stage end to end: a synthetic `Comparison` built through the
//! public metrics API (40 classes as in emoji40, one without rows, one named
//! `<b>&"x"`) -> `ovr::report::render_html` -> a temp file loaded in a real
//! headless browser (Debian's `chromium`). The screenshot is kept as
//! `target/report-screenshot.png` (and the page as `target/report-sample.html`)
//! for people to look at.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ovr::metrics::compare::{compare, ApproachInput, CompareContext, Comparison, TimelineEntry};
use ovr::report::{render_html, SECTION_IDS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const K: usize = 40;
const N: usize = 800;
const APPROACHES: [&str; 5] = [
    "multiclass-raw",
    "multiclass-temperature",
    "specialists-raw-argmax",
    "specialists-softmax",
    "specialists-calibrated",
];

fn softmax(row: &[f32]) -> Vec<f32> {
    let m = row.iter().copied().fold(f32::MIN, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn argmax(row: &[f32]) -> u32 {
    (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b }) as u32
}

/// 40 classes (the last one without rows), 800 rows, 5 approaches of
/// increasing skill, 12 training jobs on 2 lanes.
fn synthetic() -> Comparison {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut classes: Vec<String> = (0..K)
        .map(|i| {
            let stem = [
                "face",
                "animal-mammal",
                "food-fruit",
                "transport-ground",
                "sky-and-weather",
            ];
            format!("{}-{i}", stem[i % stem.len()])
        })
        .collect();
    classes[3] = r#"<b>&"x""#.into();
    classes[K - 1] = "never-seen".into();
    let labels: Vec<u32> = (0..N).map(|_| rng.random_range(0..K as u32 - 1)).collect();
    // Shared per-row noise (both heads see the same images), a little noise
    // of each head's own, a stronger signal for most specialists.
    let mut normal = |scale: f32| -> f32 {
        (0..3).map(|_| rng.random::<f32>()).sum::<f32>() * scale - 1.5 * scale
    };
    let base: Vec<f32> = (0..N * K).map(|_| normal(1.6)).collect();
    let head = |normal: &mut dyn FnMut(f32) -> f32, signal: &dyn Fn(usize) -> f32| -> Vec<f32> {
        (0..N * K)
            .map(|i| {
                base[i]
                    + normal(0.5)
                    + if labels[i / K] as usize == i % K {
                        signal(i % K)
                    } else {
                        0.0
                    }
            })
            .collect()
    };
    let multi = head(&mut normal, &|_| 2.4);
    // The specialists do worse on every fifth class.
    let spec = head(&mut normal, &|c| if c % 5 == 2 { 1.9 } else { 2.9 });
    // (name, logits, temperature): raw heads are overconfident.
    let setups = [
        (APPROACHES[0], &multi, 0.15),
        (APPROACHES[1], &multi, 0.3),
        (APPROACHES[2], &spec, 0.15),
        (APPROACHES[3], &spec, 0.5),
        (APPROACHES[4], &spec, 0.3),
    ];
    let approaches: Vec<ApproachInput> = setups
        .iter()
        .enumerate()
        .map(|(a, &(name, logits, t))| {
            let (mut probs, mut preds) = (Vec::with_capacity(N * K), Vec::with_capacity(N));
            for row in logits.chunks(K) {
                let p = softmax(&row.iter().map(|v| v / t).collect::<Vec<_>>());
                preds.push(argmax(&p));
                probs.extend(p);
            }
            ApproachInput {
                name: name.to_string(),
                description: format!("synthetic approach #{a}"),
                probs,
                preds,
            }
        })
        .collect();
    let scores = spec.clone();
    let probs: Vec<f32> = scores
        .iter()
        .map(|s| 1.0 / (1.0 + (2.0 - s).exp()))
        .collect();
    let mut timeline = Vec::new();
    let mut clock = [0.0f64; 2];
    for j in 0..12 {
        let lane = j % 2;
        let dur = 0.4 + (j * 37 % 11) as f64 / 4.0;
        let job = if j == 0 {
            "multiclass temperature grid".to_string()
        } else {
            format!("specialists {}-{}", (j - 1) * 4, (j - 1) * 4 + 3)
        };
        timeline.push(TimelineEntry {
            job,
            lane,
            start_s: clock[lane],
            end_s: clock[lane] + dur,
            heads: 1,
        });
        clock[lane] += dur;
    }
    let ctx = CompareContext {
        ensemble: "emoji40-lite0".into(),
        dataset: "emoji40".into(),
        backbone: "efficientnet-lite0".into(),
        split: "test".into(),
        classes,
        timeline,
        resamples: 300,
        seed: 5,
    };
    compare(ctx, &labels, &approaches, &scores, &probs).expect("synthetic comparison")
}

/// `/usr/bin/chromium` (or `$CHROMIUM`); the test fails without one, so it is
/// ignored by default and `.ci/run` runs it with `--ignored`.
fn chromium() -> PathBuf {
    let candidates = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from));
    for c in candidates {
        if c.is_file() {
            return c;
        }
    }
    panic!(
        "no headless browser at /usr/bin/chromium: this test needs one \
         (Debian: `apt-get install chromium`, or set CHROMIUM=/path/to/chromium)"
    );
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs headless chromium on `page` with `extra` flags, killed after 60 s.
fn run_chromium(dir: &Path, page: &Path, extra: &[String], tag: &str) -> Run {
    let profile = dir.join(format!("profile-{tag}"));
    fs::create_dir_all(&profile).unwrap();
    let (out_path, err_path) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for chromium") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {tag} did not finish within 60 s; stderr:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Run {
        ok: status.success(),
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("ERROR") || l.contains("Uncaught")))
        .collect()
}

#[test]
#[ignore = "needs chromium (apt-get install chromium); CI runs it with --ignored"]
fn report_renders_in_headless_chromium() {
    let c = synthetic();
    assert_eq!(c.approaches[0].per_class.support[K - 1], 0);
    let html = render_html(&c);
    let expected_plots = c.approaches.len() + 2 + 1 + 1;
    assert_eq!(html.matches("<svg class=\"plot\"").count(), expected_plots);
    assert!(!html.contains("http://") && !html.contains("https://"));

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    fs::write(&page, &html).unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    fs::write(target.join("report-sample.html"), &html).unwrap();

    // Screenshot.
    let png = dir.path().join("report.png");
    let shot = run_chromium(
        dir.path(),
        &page,
        &[
            "--window-size=1400,5000".to_string(),
            format!("--screenshot={}", png.display()),
            "--hide-scrollbars".to_string(),
        ],
        "screenshot",
    );
    assert!(
        shot.ok,
        "chromium --screenshot failed; stderr:\n{}",
        shot.stderr
    );
    assert!(
        console_errors(&shot.stderr).is_empty(),
        "console errors: {:?}",
        console_errors(&shot.stderr)
    );
    let bytes = fs::read(&png).expect("chromium wrote no screenshot");
    assert!(
        bytes.len() > 20_000,
        "screenshot is only {} bytes",
        bytes.len()
    );
    fs::copy(&png, target.join("report-screenshot.png")).unwrap();
    // Not blank: plenty of non-white pixels and colours.
    let img = image::load_from_memory(&bytes)
        .expect("decodable PNG")
        .to_rgb8();
    let inked = img
        .pixels()
        .filter(|p| p.0.iter().any(|&v| v < 200))
        .count();
    let total = (img.width() * img.height()) as usize;
    assert!(
        inked * 50 > total,
        "screenshot looks blank: {inked} of {total} pixels inked"
    );
    let mut colours: Vec<[u8; 3]> = img.pixels().step_by(7).map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 100, "only {} colours", colours.len());

    // DOM as the browser parsed it.
    let dom = run_chromium(dir.path(), &page, &["--dump-dom".to_string()], "dom");
    assert!(
        dom.ok,
        "chromium --dump-dom failed; stderr:\n{}",
        dom.stderr
    );
    assert!(
        console_errors(&dom.stderr).is_empty(),
        "{:?}",
        console_errors(&dom.stderr)
    );
    for id in SECTION_IDS {
        assert!(
            dom.stdout.contains(&format!("id=\"{id}\"")),
            "DOM lacks section {id}"
        );
    }
    assert_eq!(dom.stdout.matches("data-plot=\"").count(), expected_plots);
    assert_eq!(dom.stdout.matches("data-plot=\"confusion\"").count(), 2);
    assert_eq!(dom.stdout.matches("data-plot=\"reliability\"").count(), 5);
    // The escaped class name came back as text, not as a <b> element.
    assert!(
        dom.stdout.contains("&lt;b&gt;&amp;\"x\"")
            || dom.stdout.contains("&lt;b&gt;&amp;&quot;x&quot;")
    );
    assert!(!dom.stdout.contains("<b>&amp;"));
}
