//! What a release installs on one platform: its modules, where their packages, file
//! indexes and copy packs are, and the delta packs that update to it from earlier
//! releases.
//!
//! The manifest names this document by size and blake3 (`blobs/<blake3>.json`); a
//! client fetches it only when it is about to install the release, so the polled
//! manifest stays small however many modules and packs a release has.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::file_index::IndexBlob;
use crate::ids::{Blake3Hash, ModuleName, Platform, RelativePath};
use crate::limits::{MAX_MODULES, MAX_PACKS};
use crate::manifest::{Blob, FORMAT_VERSION};

/// The most bytes of a platform release document a client reads: one with
/// [`MAX_MODULES`] modules and [`MAX_PACKS`] packs is under 200 KiB.
pub const PLATFORM_RELEASE_SIZE_LIMIT: u64 = 1024 * 1024;

/// The modules that make up a release on one platform, and the packs that update to
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformRelease {
    /// Format of this document.
    pub format: u32,
    /// The release this document belongs to: a client checks it is the one the
    /// manifest named.
    pub version: Version,
    /// The platform it is for (`any` for every platform).
    pub platform: Platform,
    /// The modules, by name. Together they form the installed release tree.
    pub modules: BTreeMap<ModuleName, Module>,
    /// Delta packs to this release, one per earlier release a client may update from,
    /// newest source first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packs: Vec<PackRef>,
}

/// A separately versioned, separately downloaded part of a release tree, or a single
/// image file installed into alternating slots (see [`ModuleKind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// The release in which this module's content last changed. Equal versions of a
    /// module in two releases mean equal content.
    pub version: Version,
    /// What the module is; left out for trees.
    #[serde(default, skip_serializing_if = "ModuleKind::is_tree")]
    pub kind: ModuleKind,
    /// Where the module's files go inside the release tree; absent for the root. For
    /// an image, the image file's path in the release folder (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<RelativePath>,
    /// Total size of the module's files once unpacked, in bytes. Clients stop
    /// unpacking past it (decompression bombs) and use it to check free space.
    pub unpacked_size: u64,
    /// For a tree, the deterministic tar of the module's files, compressed as
    /// [`Module::package_format`] says (`blobs/<blake3>.tar.zst` or `.tar.gz`). For an image,
    /// the image's zstd copy (`blobs/<blake3>.zst`).
    pub package: Blob,
    /// How a tree's package is compressed; left out for tar.gz, the format of every
    /// package before tar.zst, so that older documents read as what they are. Always
    /// tar.gz (left out) for an image, whose package is its zstd copy.
    ///
    /// A client that predates this field ignores it and reads the package as tar.gz,
    /// so a channel with a tar.zst release must ask for a client that reads it: see
    /// [`PackageFormat::min_client_version`].
    #[serde(default, skip_serializing_if = "PackageFormat::is_tar_gz")]
    pub package_format: PackageFormat,
    /// The module's [`crate::FileIndex`].
    pub index: IndexBlob,
    /// The module's copy pack (`blobs/<blake3>.copies`): the zstd copy of each
    /// distinct file content, concatenated in index order
    /// ([`crate::FileIndex::copy_layout`]), from which clients fetch single files
    /// as byte ranges. Absent for an image, whose package is its one copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies: Option<Blob>,
}

/// What a module installs as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    /// Files and directories unpacked into the release tree.
    #[default]
    Tree,
    /// One image file (a root file system, a firmware blob) written whole into the
    /// inactive one of two slots (A/B) and activated by a hook, never into the release
    /// tree. Its file index lists exactly that one file.
    Image,
}

impl ModuleKind {
    /// Whether this is [`ModuleKind::Tree`], the default.
    pub fn is_tree(&self) -> bool {
        *self == Self::Tree
    }
}

/// How a tree module's package is compressed. Both are deterministic tars (sorted
/// entries, fixed times and owners); they differ in size and in speed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PackageFormat {
    /// gzip: what every tar tool and host reads. The default of a document that
    /// names no format.
    #[default]
    #[serde(rename = "tar.gz")]
    TarGz,
    /// zstd (level 19 with a long window by default): a third to a half smaller than
    /// tar.gz on real releases and several times faster to decompress. Its window is
    /// at most 2^[`MAX_PACKAGE_WINDOW_LOG`] bytes.
    #[serde(rename = "tar.zst")]
    TarZst,
}

/// The largest zstd window (as a power of two, 128 MiB) a tar.zst package may use:
/// clients refuse a larger one rather than allocate what it asks for, and the
/// publisher never writes one (`zstd --long=27`, the window zstd's own tools
/// decompress without being told).
pub const MAX_PACKAGE_WINDOW_LOG: u32 = 27;

impl PackageFormat {
    /// Whether this is [`PackageFormat::TarGz`], the default.
    pub fn is_tar_gz(&self) -> bool {
        *self == Self::TarGz
    }

    /// What the format is called, and its file extension: `tar.gz` or `tar.zst`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TarGz => "tar.gz",
            Self::TarZst => "tar.zst",
        }
    }

    /// The first `wavecast-update` that reads packages of this format. Clients
    /// before 0.2.0 ignore [`Module::package_format`] and would fail to read a tar.zst as
    /// tar.gz after downloading it, so a channel holding a tar.zst release has a
    /// `min_client_version` of at least this: older clients update themselves
    /// first, or stop with a hint, instead of failing on every install.
    pub fn min_client_version(self) -> Version {
        match self {
            Self::TarGz => Version::new(0, 1, 0),
            Self::TarZst => Version::new(0, 2, 0),
        }
    }
}

impl std::fmt::Display for PackageFormat {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for PackageFormat {
    type Err = Error;

    /// Parses `gz`, `tar.gz`, `zst` or `tar.zst`.
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "gz" | "tar.gz" => Ok(Self::TarGz),
            "zst" | "tar.zst" => Ok(Self::TarZst),
            _ => Err(Error::Invalid {
                document: "package format",
                problem: format!("expected `zst` or `gz`, got `{text}`"),
            }),
        }
    }
}

/// A delta pack (`blobs/<blake3>.pack`, see [`crate::PackHeader`]) that updates a
/// client on release `from` of the same platform to this release in one download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRef {
    /// The release the pack updates from.
    pub from: Version,
    /// Size of the pack in bytes.
    pub size: u64,
    /// blake3 of the pack.
    pub blake3: Blake3Hash,
}

impl PackRef {
    /// The pack as a [`Blob`].
    pub fn blob(&self) -> Blob {
        Blob {
            size: self.size,
            blake3: self.blake3.clone(),
        }
    }
}

impl PlatformRelease {
    /// An empty document of this format for `version` on `platform`.
    pub fn new(version: Version, platform: Platform) -> Self {
        Self {
            format: FORMAT_VERSION,
            version,
            platform,
            modules: BTreeMap::new(),
            packs: Vec::new(),
        }
    }

    /// Deserializes and validates a platform release. Call it only on bytes whose
    /// blake3 matched the signed manifest's reference, and at most
    /// [`PLATFORM_RELEASE_SIZE_LIMIT`] of them.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedFormat`] for another format, [`Error::Json`],
    /// [`Error::LimitExceeded`] past [`MAX_MODULES`] or [`MAX_PACKS`],
    /// [`Error::Invalid`] for modules that cannot be installed together.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let document: Self = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            document: "platform release",
            source,
        })?;
        if document.format != FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                document: "platform release",
                found: document.format,
                supported: FORMAT_VERSION,
            });
        }
        document.validate()?;
        Ok(document)
    }

    /// The document's canonical bytes, compact JSON: what its blake3 names.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("platform release types always serialize to JSON")
    }

    /// The pack that updates from release `from`, if there is one.
    pub fn pack_from(&self, from: &Version) -> Option<&PackRef> {
        self.packs.iter().find(|pack| &pack.from == from)
    }

    /// Checks the rules that serde's types cannot express: bounded lists, at most one
    /// image module (with a dest), modules in disjoint directories, packs from
    /// distinct releases older than this one.
    ///
    /// # Errors
    ///
    /// [`Error::LimitExceeded`] or [`Error::Invalid`].
    pub fn validate(&self) -> Result<()> {
        let exceeded = |limit: crate::Limit, found: usize, at: &str| Error::LimitExceeded {
            document: "platform release",
            limit,
            found,
            at: at.to_owned(),
        };
        if self.modules.len() > MAX_MODULES {
            return Err(exceeded(
                crate::Limit::Modules,
                self.modules.len(),
                "modules",
            ));
        }
        if self.packs.len() > MAX_PACKS {
            return Err(exceeded(crate::Limit::Packs, self.packs.len(), "packs"));
        }
        let invalid = |problem: String| Error::Invalid {
            document: "platform release",
            problem,
        };
        if self.modules.is_empty() {
            return Err(invalid("it has no modules".into()));
        }
        let platform = &self.platform;
        let images: Vec<&ModuleName> = self
            .modules
            .iter()
            .filter(|(_, module)| module.kind == ModuleKind::Image)
            .map(|(name, _)| name)
            .collect();
        if let [first, second, ..] = images.as_slice() {
            return Err(invalid(format!(
                "modules {first} and {second} on {platform} are both images; a release has at most one"
            )));
        }
        if let Some(name) = images.first() {
            let image = &self.modules[*name];
            if image.dest.is_none() {
                return Err(invalid(format!(
                    "image module {name} on {platform} has no dest (its file's path)"
                )));
            }
            if image.package_format != PackageFormat::TarGz {
                return Err(invalid(format!(
                    "image module {name} on {platform} names a package format; an image's package is its zstd copy"
                )));
            }
        }
        let roots: Vec<(&ModuleName, Option<&RelativePath>)> = self
            .modules
            .iter()
            .filter(|(_, module)| module.kind == ModuleKind::Tree)
            .map(|(name, module)| (name, module.dest.as_ref()))
            .collect();
        for (i, (name, dest)) in roots.iter().enumerate() {
            for (other, other_dest) in &roots[i + 1..] {
                let overlap = match (dest, other_dest) {
                    (Some(a), Some(b)) => a.is_within(b) || b.is_within(a),
                    _ => true,
                };
                if overlap {
                    return Err(invalid(format!(
                        "modules {name} and {other} on {platform} install into overlapping directories"
                    )));
                }
            }
        }
        let mut sources = BTreeSet::new();
        for pack in &self.packs {
            if pack.from >= self.version {
                return Err(invalid(format!(
                    "a pack updates from {}, which is not older than {}",
                    pack.from, self.version
                )));
            }
            if !sources.insert(&pack.from) {
                return Err(invalid(format!("two packs update from {}", pack.from)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::tests::blob;

    pub(crate) fn module(version: &str) -> Module {
        Module {
            version: version.parse().unwrap(),
            kind: ModuleKind::Tree,
            dest: None,
            unpacked_size: 1000,
            package: blob(version),
            package_format: PackageFormat::TarGz,
            index: IndexBlob {
                size: 80,
                json_size: 200,
                blake3: Blake3Hash::of(format!("{version}-index").as_bytes()),
            },
            copies: Some(blob(&format!("{version}-copies"))),
        }
    }

    pub(crate) fn platform_release(version: &str) -> PlatformRelease {
        let mut release = PlatformRelease::new(version.parse().unwrap(), "any".parse().unwrap());
        release
            .modules
            .insert("app".parse().unwrap(), module(version));
        release
    }

    #[test]
    fn a_platform_release_round_trips_compactly_and_trees_leave_their_kind_out() {
        let mut release = platform_release("1.1.0");
        release.packs.push(PackRef {
            from: "1.0.0".parse().unwrap(),
            size: 1234,
            blake3: Blake3Hash::of(b"pack"),
        });
        let text = String::from_utf8(release.to_json()).unwrap();
        assert!(!text.contains("\"kind\"") && !text.contains('\n'), "{text}");
        assert_eq!(PlatformRelease::parse(text.as_bytes()).unwrap(), release);
        assert_eq!(
            release.pack_from(&"1.0.0".parse().unwrap()).unwrap().size,
            1234
        );
        assert!(release.pack_from(&"0.9.0".parse().unwrap()).is_none());
    }

    #[test]
    fn the_package_format_is_left_out_for_tar_gz_and_named_for_tar_zst() {
        let mut release = platform_release("1.0.0");
        let gz = String::from_utf8(release.to_json()).unwrap();
        assert!(!gz.contains("package_format"), "{gz}");
        // A document written before the field existed reads as tar.gz.
        assert_eq!(
            PlatformRelease::parse(gz.as_bytes()).unwrap().modules["app"].package_format,
            PackageFormat::TarGz
        );
        release.modules.get_mut("app").unwrap().package_format = PackageFormat::TarZst;
        let zst = String::from_utf8(release.to_json()).unwrap();
        assert!(zst.contains("\"package_format\":\"tar.zst\""), "{zst}");
        assert_eq!(PlatformRelease::parse(zst.as_bytes()).unwrap(), release);
        let unknown = zst.replace("tar.zst", "tar.xz");
        let error = PlatformRelease::parse(unknown.as_bytes()).unwrap_err();
        assert!(matches!(error, Error::Json { .. }), "{error}");
    }

    #[test]
    fn package_formats_parse_and_name_the_client_that_reads_them() {
        for (text, format) in [
            ("gz", PackageFormat::TarGz),
            ("tar.gz", PackageFormat::TarGz),
            ("zst", PackageFormat::TarZst),
            ("tar.zst", PackageFormat::TarZst),
        ] {
            assert_eq!(text.parse::<PackageFormat>().unwrap(), format);
        }
        let error = "xz".parse::<PackageFormat>().unwrap_err().to_string();
        assert!(
            error.contains("`xz`") && error.contains("`zst` or `gz`"),
            "{error}"
        );
        assert_eq!(PackageFormat::TarZst.to_string(), "tar.zst");
        assert!(
            PackageFormat::TarZst.min_client_version() > PackageFormat::TarGz.min_client_version()
        );
    }

    #[test]
    fn overlapping_modules_and_two_images_are_refused() {
        let mut release = platform_release("1.0.0");
        let mut core = release.modules["app"].clone();
        core.dest = Some("bin".parse().unwrap());
        release.modules.insert("core".parse().unwrap(), core);
        let error = PlatformRelease::parse(&release.to_json()).unwrap_err();
        assert!(error.to_string().contains("overlapping"), "{error}");

        let mut with_image = platform_release("1.1.0");
        with_image.modules.get_mut("app").unwrap().dest = Some("bin".parse().unwrap());
        let mut image = with_image.modules["app"].clone();
        image.kind = ModuleKind::Image;
        image.dest = Some("images/rootfs.img".parse().unwrap());
        image.copies = None;
        with_image
            .modules
            .insert("os".parse().unwrap(), image.clone());
        let text = String::from_utf8(with_image.to_json()).unwrap();
        assert!(text.contains("\"kind\":\"image\""), "{text}");
        assert_eq!(PlatformRelease::parse(text.as_bytes()).unwrap(), with_image);

        let mut two_images = with_image.clone();
        let mut boot = image;
        boot.dest = Some("images/boot.img".parse().unwrap());
        two_images.modules.insert("boot".parse().unwrap(), boot);
        let error = PlatformRelease::parse(&two_images.to_json()).unwrap_err();
        assert!(error.to_string().contains("both images"), "{error}");

        let mut zst_image = with_image.clone();
        zst_image.modules.get_mut("os").unwrap().package_format = PackageFormat::TarZst;
        let error = PlatformRelease::parse(&zst_image.to_json()).unwrap_err();
        assert!(
            error.to_string().contains("names a package format"),
            "{error}"
        );

        let mut no_dest = with_image;
        no_dest.modules.remove("app");
        no_dest.modules.get_mut("os").unwrap().dest = None;
        let error = PlatformRelease::parse(&no_dest.to_json()).unwrap_err();
        assert!(error.to_string().contains("has no dest"), "{error}");
    }

    #[test]
    fn packs_must_come_from_distinct_older_releases_and_stay_bounded() {
        let pack = |from: &str| PackRef {
            from: from.parse().unwrap(),
            size: 1,
            blake3: Blake3Hash::of(from.as_bytes()),
        };
        let mut release = platform_release("1.1.0");
        release.packs = vec![pack("1.1.0")];
        assert!(PlatformRelease::parse(&release.to_json()).is_err());
        release.packs = vec![pack("1.0.0"), pack("1.0.0")];
        assert!(PlatformRelease::parse(&release.to_json()).is_err());
        release.packs = (0..=MAX_PACKS).map(|n| pack(&format!("0.{n}.0"))).collect();
        let error = PlatformRelease::parse(&release.to_json()).unwrap_err();
        assert!(matches!(error, Error::LimitExceeded { .. }), "{error}");
        release.format = 1;
        assert!(matches!(
            PlatformRelease::parse(&release.to_json()).unwrap_err(),
            Error::UnsupportedFormat { found: 1, .. }
        ));
    }
}
