//! Tests of `timm`.

use super::*;
use candle_core::D;
use candle_nn::VarMap;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;
type Edit = fn(&mut HashMap<String, Tensor>);

/// Replaces zero-initialized variables (BN shifts/means, LayerScale gammas,
/// tokens) with noise and makes BN variances positive but not 1.
fn randomize(varmap: &VarMap) -> TestResult {
    for (name, var) in varmap.data().lock().map_err(|e| e.to_string())?.iter() {
        let (shape, dev) = (var.shape(), var.device());
        if name.ends_with("running_var") {
            var.set(&Tensor::rand(0.5f32, 1.5, shape, dev)?)?;
        } else if var.sqr()?.sum_all()?.to_scalar::<f32>()? == 0.0 {
            var.set(&Tensor::randn(0f32, 0.1, shape, dev)?)?;
        }
    }
    Ok(())
}

fn save_edited(
    varmap: &VarMap,
    path: &Path,
    edit: impl FnOnce(&mut HashMap<String, Tensor>),
) -> TestResult {
    let vars = varmap.data().lock().map_err(|e| e.to_string())?;
    let mut map: HashMap<String, Tensor> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    edit(&mut map);
    Ok(candle_core::safetensors::save(&map, path)?)
}

fn max_abs(t: &Tensor) -> candle_core::Result<f32> {
    t.abs()?.flatten_all()?.max(0)?.to_scalar()
}

fn assert_close(got: &Tensor, want: &Tensor) -> TestResult {
    assert_eq!(got.dims(), want.dims());
    let (diff, scale) = (max_abs(&(got - want)?)?, max_abs(want)?.max(1.0));
    assert!(diff <= 1e-5 * scale, "max diff {diff} (scale {scale})");
    Ok(())
}

/// A reference model built from a VarMap with random weights, those weights
/// saved to a file, the backbone loaded from it by id, and its features of
/// two random images.
struct Case<M> {
    bb: Box<dyn Backbone>,
    varmap: VarMap,
    model: M,
    px: Tensor,
    /// `px` normalized, the reference model's input.
    x: Tensor,
    f: Tensor,
}

fn case<M>(
    dir: &Path,
    id: &str,
    dim: usize,
    build: impl Fn(VarBuilder<'static>) -> candle_core::Result<M>,
) -> TestResult<Case<M>> {
    let varmap = VarMap::new();
    build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    randomize(&varmap)?;
    // Rebuilt so build-time work (RepVGG's re-parameterization) sees the random values.
    let model = build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    let path = dir.join("w.safetensors");
    varmap.save(&path)?;
    let bb = load_timm_backbone(id, &path, &Device::Cpu)?;
    assert_eq!((bb.id(), bb.input_size(), bb.feature_dim()), (id, 224, dim));
    assert_eq!(bb.normalization(), Normalization::IMAGENET);
    assert_eq!(bb.weights_hash(), sha256_file(&path)?);
    let px = Tensor::rand(0f32, 255.0, (2, 3, 224, 224), &Device::Cpu)?;
    let f = bb.features(&px)?;
    assert_eq!(f.dims(), &[2, dim]);
    let v: Vec<Vec<f32>> = f.to_vec2()?;
    assert!(v.iter().flatten().all(|x| x.is_finite()));
    let apart = v[0]
        .iter()
        .zip(&v[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(apart > 1e-6, "two images gave the same features");
    let x = Normalization::IMAGENET.apply(&px)?;
    Ok(Case {
        bb,
        varmap,
        model,
        px,
        x,
        f,
    })
}

#[test]
fn resnet18_matches_reference_with_fc_logits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = case(dir.path(), "resnet18", 512, |vb| {
        Ok((
            resnet::resnet18_no_final_layer(vb.clone())?,
            candle_nn::linear(512, 1000, vb.pp("fc"))?,
        ))
    })?;
    let want = c.x.apply(&c.model.0)?;
    assert_close(&c.f, &want)?;
    assert_close(
        &c.bb.logits(&c.px)?.expect("fc.* present"),
        &want.apply(&c.model.1)?,
    )
}

#[test]
fn resnet50_matches_reference() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = case(
        dir.path(),
        "resnet50",
        2048,
        resnet::resnet50_no_final_layer,
    )?;
    assert_close(&c.f, &c.x.apply(&c.model)?)?;
    assert!(c.bb.logits(&c.px)?.is_none());
    Ok(())
}

#[test]
fn convnext_tiny_applies_head_norm() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = case(dir.path(), "convnext-tiny", 768, |vb| {
        let body = convnext::convnext_no_final_layer(&convnext::Config::tiny(), vb.clone())?;
        Ok((body, candle_nn::layer_norm(768, 1e-6, vb.pp("head.norm"))?))
    })?;
    assert_close(&c.f, &c.x.apply(&c.model.0)?.apply(&c.model.1)?)?;
    assert!(c.bb.logits(&c.px)?.is_none());
    Ok(())
}

#[test]
fn repvgg_a0_matches_reference_with_head_fc() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = case(dir.path(), "repvgg-a0", 1280, |vb| {
        let body = repvgg::repvgg_no_final_layer(&repvgg::Config::a0(), vb.clone())?;
        Ok((body, candle_nn::linear(1280, 1000, vb.pp("head.fc"))?))
    })?;
    let want = c.x.apply(&c.model.0)?;
    assert_close(&c.f, &want)?;
    assert_close(
        &c.bb.logits(&c.px)?.expect("head.fc.* present"),
        &want.apply(&c.model.1)?,
    )
}

#[test]
fn dinov2_vits14_cls_and_mean_patch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = case(dir.path(), "dinov2-vits14", 768, dinov2::vit_small)?;
    let (mut mean_patch, mut logits) = (vec![], vec![]);
    for i in 0..2 {
        let xi = c.x.narrow(0, i, 1)?;
        // [1 layer, 1 image, 256 patches, 384] after the final norm.
        let patches = c
            .model
            .get_intermediate_layers(&xi, &[11], false, false, true)?;
        mean_patch.push(patches.squeeze(0)?.mean(1)?);
        logits.push(c.model.forward(&xi)?);
    }
    assert_close(
        &c.f.narrow(D::Minus1, 384, 384)?,
        &Tensor::cat(&mean_patch, 0)?,
    )?;
    // The file's head maps [CLS, mean patch] with a full-rank matrix: equal logits pin the CLS half.
    let got = c.bb.logits(&c.px)?.expect("head.* present");
    assert_close(&got, &Tensor::cat(&logits, 0)?)?;

    // Without head weights: same features, no logits.
    let headless = dir.path().join("headless.safetensors");
    save_edited(&c.varmap, &headless, |m| {
        m.retain(|k, _| !k.starts_with("head."))
    })?;
    let bb = load_timm_backbone("dinov2-vits14", &headless, &Device::Cpu)?;
    assert_close(&bb.features(&c.px)?, &c.f)?;
    assert!(bb.logits(&c.px)?.is_none());
    Ok(())
}

#[test]
fn load_errors_name_the_problem() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cpu = &Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, cpu);
    resnet::resnet18_no_final_layer(vb.clone())?;
    candle_nn::linear(512, 1000, vb.pp("fc"))?;

    let err = load_timm_backbone("resnet19", &dir.path().join("x"), cpu).err();
    assert!(
        matches!(&err, Some(BackboneError::Unknown { name, allowed })
            if name == "resnet19" && TIMM_BACKBONES.iter().all(|id| allowed.contains(id))),
        "{err:?}"
    );
    let err = load_timm_backbone("resnet18", &dir.path().join("absent"), cpu).err();
    assert!(
        matches!(err, Some(BackboneError::MissingWeights { .. })),
        "{err:?}"
    );
    let ok = dir.path().join("ok.safetensors");
    varmap.save(&ok)?;
    let bb = load_timm_backbone("resnet18", &ok, cpu)?;
    let wrong = Tensor::zeros((1, 3, 200, 200), DType::F32, cpu)?;
    assert!(matches!(
        bb.features(&wrong),
        Err(BackboneError::Invalid { .. })
    ));

    let cases: [(&str, Edit); 2] = [
        ("layer1.0.conv1.weight", |m| {
            drop(m.remove("layer1.0.conv1.weight"))
        }),
        ("fc.weight", |m| {
            let bad = Tensor::zeros((1000, 256), DType::F32, &Device::Cpu).expect("zeros");
            m.insert("fc.weight".into(), bad);
        }),
    ];
    for (i, (tensor, edit)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.safetensors"));
        save_edited(&varmap, &path, edit)?;
        match load_timm_backbone("resnet18", &path, cpu) {
            Err(e @ BackboneError::Load { .. }) => {
                let msg = crate::util::chain::chain(&e);
                assert!(
                    msg.contains(tensor) && msg.contains(&*path.to_string_lossy()),
                    "{msg}"
                );
            }
            other => panic!("expected Load error for {tensor}, got {:?}", other.err()),
        }
    }

    Ok(())
}
