//! Downloading the flower sets: fetch a `.tgz` to a temp file, verify its pinned checksum, extract
//! it safely into a temp folder (regular files only, no path outside it, bounded size and count),
//! sort the photos into one folder per class, and only then rename the folder into place.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::data::download::download_into_new_folders;
use crate::data::error::{DataError, DownloadFailure};
use crate::data::locate::{locate_named_set, Found, Origin};

/// How an archive's bytes are pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// sha256, hex.
    Sha256(&'static str),
    /// md5, hex: where the publisher gives no sha256 (the Oxford 17 archive; the value is the one
    /// torchvision checks).
    Md5(&'static str),
}

/// How an archive's photos map to class folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `<top>/<class>/<photo>`: the class is the folder (TensorFlow's flower_photos).
    ClassFolders,
    /// `<top>/image_NNNN.jpg`, `per_class` consecutive numbers per class in `classes` order
    /// (Oxford 17: 80 per class).
    NumberedRuns {
        /// The class names in numbering order.
        classes: &'static [&'static str],
        /// Photos per class.
        per_class: usize,
    },
}

/// One downloadable image set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteArchive {
    /// The data set's folder name under the data root (`flowers`, `flowers17`).
    pub name: &'static str,
    /// The official address.
    pub url: &'static str,
    /// The archive's length in bytes (0: unknown, then only `max_bytes` bounds it).
    pub len: u64,
    /// Its checksum.
    pub checksum: Checksum,
    /// Longest archive accepted (a body past it is refused before it fills the disk).
    pub max_bytes: u64,
    /// Most bytes the extracted files may take together.
    pub max_extracted: u64,
    /// Most entries the archive may hold.
    pub max_entries: usize,
    /// How photos map to classes.
    pub layout: Layout,
}

/// TensorFlow's `flower_photos` (3,670 photos, 5 classes), as the study used.
pub const FLOWER_PHOTOS: RemoteArchive = RemoteArchive {
    name: "flowers",
    url: "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
    len: 228_813_984,
    checksum: Checksum::Sha256("4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c"),
    max_bytes: 228_813_984,
    max_extracted: 512 << 20,
    max_entries: 10_000,
    layout: Layout::ClassFolders,
};

/// The Oxford 17 Category Flower Dataset (1,360 photos, 80 per class).
pub const FLOWERS17: RemoteArchive = RemoteArchive {
    name: "flowers17",
    url: "https://www.robots.ox.ac.uk/~vgg/data/flowers/17/17flowers.tgz",
    len: 0,
    checksum: Checksum::Md5("b59a65d8d1a99cd66944d474e1289eab"),
    max_bytes: 200 << 20,
    max_extracted: 400 << 20,
    max_entries: 2_000,
    layout: Layout::NumberedRuns {
        classes: &[
            "daffodil",
            "snowdrop",
            "lily_valley",
            "bluebell",
            "crocus",
            "iris",
            "tigerlily",
            "tulip",
            "fritillary",
            "sunflower",
            "daisy",
            "colts_foot",
            "dandelion",
            "cowslip",
            "buttercup",
            "windflower",
            "pansy",
        ],
        per_class: 80,
    },
};

/// The archive named `name` (`flowers` or `flowers17`).
pub fn archive_named(name: &str) -> Option<RemoteArchive> {
    [FLOWER_PHOTOS, FLOWERS17]
        .into_iter()
        .find(|a| a.name == name)
}

/// The image set `name`, in this order: a full copy found on disk; else (when `allow_download` and
/// the set has an official archive) the archive downloaded into `<data_dir>/<name>`, or
/// `./data/<name>` without a `data_dir`; else, without a `data_dir`, the shipped sample (its
/// `note` says why).
pub fn ensure_named_set(
    data_dir: Option<&Path>,
    name: &str,
    allow_download: bool,
) -> Result<Found, DataError> {
    let found = locate_named_set(data_dir, name);
    let archive = match (&found, archive_named(name)) {
        (Ok(f), _) if f.origin == Origin::Full || !allow_download => return found,
        (Err(_), _) if !allow_download => return found,
        (_, None) => return found,
        (_, Some(a)) => a,
    };
    let dest = data_dir.unwrap_or(Path::new("data")).join(name);
    match download_into_new_folders(&dest, |d| download_archive(&archive, archive.url, d)) {
        Ok(()) => Ok(Found {
            dir: dest,
            origin: Origin::Full,
            note: None,
        }),
        Err(e) => match found {
            Ok(mut sample) => {
                sample.note = Some(format!(
                    "{e}\nso the sample shipped in {} is used instead",
                    sample.dir.display()
                ));
                Ok(sample)
            }
            Err(_) => Err(e),
        },
    }
}

/// Downloads `archive` from `url` and extracts it into `dest` (which must not exist yet), with a
/// progress bar on a terminal. Nothing is left behind on failure: no temp file, no partial
/// folder. The error names the URL and what was expected and found.
pub fn download_archive(archive: &RemoteArchive, url: &str, dest: &Path) -> Result<(), DataError> {
    if dest.exists() {
        return Err(DataError::Folder {
            path: dest.to_path_buf(),
            expected: "no folder yet (the download extracts into a new one)".into(),
            found: "an existing folder; remove it or point --data-dir at it".into(),
        });
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| DataError::io("creating folder", parent, e))?;
    let tag = format!(".{}.part-{}", archive.name, std::process::id());
    let tmp_file = parent.join(format!("{tag}.tgz"));
    let tmp_dir = parent.join(&tag);
    let fail = |reason: String| DataError::Download {
        failures: vec![DownloadFailure {
            url: url.to_string(),
            path: dest.to_path_buf(),
            reason,
        }],
        hint: format!(
            "other ways: put the photos in {}/<class>/ yourself, or point --data-dir or \
             SALIENCY_DATA at a folder holding {}/",
            dest.display(),
            archive.name
        ),
    };
    let result = fetch(archive, url, &tmp_file)
        .and_then(|()| extract(archive, &tmp_file, &tmp_dir))
        .and_then(|()| {
            std::fs::rename(&tmp_dir, dest).map_err(|e| format!("a failed rename into place: {e}"))
        });
    let _ = std::fs::remove_file(&tmp_file);
    if let Err(reason) = result {
        let _ = std::fs::remove_dir_all(&tmp_dir);
        return Err(fail(format!("{reason}; nothing was kept")));
    }
    Ok(())
}

/// Streams the body into `tmp` (bounded by `max_bytes`) and checks its length and checksum.
fn fetch(archive: &RemoteArchive, url: &str, tmp: &Path) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, _) => format!("expected HTTP status 200, found {code}"),
        ureq::Error::Transport(t) => format!("expected a response, found a transport error: {t}"),
    })?;
    let total = response
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(archive.len);
    let bar = bytes_bar(total, archive.name);
    let mut out = File::create(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut body = response.into_reader().take(archive.max_bytes + 1);
    let (mut sha, mut md5, mut n) = (Sha256::new(), Md5::new(), 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = body
            .read(&mut buf)
            .map_err(|e| format!("expected {total} bytes, found an interrupted transfer: {e}"))?;
        if k == 0 {
            break;
        }
        sha.update(&buf[..k]);
        md5.update(&buf[..k]);
        out.write_all(&buf[..k])
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        n += k as u64;
        bar.set_position(n);
    }
    bar.finish_and_clear();
    out.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    if n > archive.max_bytes {
        return Err(format!(
            "expected at most {} bytes, found a longer body",
            archive.max_bytes
        ));
    }
    if archive.len != 0 && n != archive.len {
        return Err(format!("expected {} bytes, found {n}", archive.len));
    }
    let (kind, expected, found) = match archive.checksum {
        Checksum::Sha256(h) => ("sha256", h, format!("{:x}", sha.finalize())),
        Checksum::Md5(h) => ("md5", h, format!("{:x}", md5.finalize())),
    };
    if found != expected {
        return Err(format!(
            "expected {kind} {expected}, found {kind} {found} ({n} bytes)"
        ));
    }
    Ok(())
}

/// A byte-count progress bar on standard error, hidden when it is not a terminal.
fn bytes_bar(total: u64, name: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "downloading {msg} {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(name.to_string());
    bar
}

/// Extracts the photos of `tgz` into `dir/<class>/`, refusing links, devices, absolute paths,
/// `..`, and archives past the entry or size limits.
fn extract(archive: &RemoteArchive, tgz: &Path, dir: &Path) -> Result<(), String> {
    let file = File::open(tgz).map_err(|e| format!("cannot read {}: {e}", tgz.display()))?;
    let mut tar = tar::Archive::new(GzDecoder::new(std::io::BufReader::new(file)));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (mut entries, mut bytes, mut photos) = (0usize, 0u64, 0usize);
    for entry in tar
        .entries()
        .map_err(|e| format!("not a tar.gz archive: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("a corrupt archive: {e}"))?;
        entries += 1;
        if entries > archive.max_entries {
            return Err(format!(
                "expected at most {} entries, found more",
                archive.max_entries
            ));
        }
        let path = entry
            .path()
            .map_err(|e| format!("an entry with an unreadable name: {e}"))?
            .into_owned();
        let parts = safe_parts(&path)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "expected regular files and folders only, found {kind:?} at {}",
                path.display()
            ));
        }
        let Some(target) = photo_target(archive, &parts) else {
            continue;
        };
        bytes += entry.size();
        if bytes > archive.max_extracted {
            return Err(format!(
                "expected at most {} bytes of photos, found more",
                archive.max_extracted
            ));
        }
        let out = dir.join(target);
        if let Some(p) = out.parent() {
            std::fs::create_dir_all(p)
                .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        }
        let mut f =
            File::create(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        // `take` bounds the copy by the header's size, whatever the stream holds.
        let size = entry.size();
        std::io::copy(&mut (&mut entry).take(size), &mut f)
            .map_err(|e| format!("a corrupt entry {}: {e}", path.display()))?;
        photos += 1;
    }
    if photos == 0 {
        return Err("expected photos in the archive, found none".into());
    }
    Ok(())
}

/// The path's parts when every one is a plain name (no root, no `.`/`..`, no prefix).
fn safe_parts(path: &Path) -> Result<Vec<String>, String> {
    path.components()
        .map(|c| match c {
            Component::Normal(s) => s
                .to_str()
                .map(str::to_string)
                .ok_or_else(|| format!("a non-UTF-8 name {}", path.display())),
            Component::CurDir => Ok(String::new()),
            _ => Err(format!(
                "expected paths inside the archive's folder, found {}",
                path.display()
            )),
        })
        .filter(|p| !matches!(p, Ok(s) if s.is_empty()))
        .collect()
}

/// Where a photo goes under the extraction folder (`class/file`), or `None` for files that are
/// not photos of a class (the archive's own LICENSE.txt is kept at the top).
fn photo_target(archive: &RemoteArchive, parts: &[String]) -> Option<PathBuf> {
    let file = parts.last()?;
    if file == "LICENSE.txt" || file == "files.txt" {
        return Some(PathBuf::from(file));
    }
    let is_photo = file.to_ascii_lowercase().ends_with(".jpg");
    match archive.layout {
        Layout::ClassFolders if is_photo && parts.len() == 3 => {
            Some(PathBuf::from(&parts[1]).join(file))
        }
        Layout::NumberedRuns { classes, per_class } if is_photo => {
            let number: usize = file
                .strip_prefix("image_")?
                .strip_suffix(".jpg")?
                .parse()
                .ok()?;
            let class = classes.get(number.checked_sub(1)? / per_class)?;
            Some(PathBuf::from(class).join(file))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_server::{Reply, Server};
    use std::collections::HashMap;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("saliency-tgz-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A `.tgz` holding `files` (path, bytes), as GNU tar writes them; `raw_names` writes names
    /// straight into the header (so `../x` can be tested: the builder refuses it).
    fn tgz(files: &[(&str, &[u8])], raw_names: bool) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, bytes) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            if raw_names {
                let field = &mut h.as_old_mut().name;
                field[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                builder.append(&h, *bytes).unwrap();
            } else {
                builder.append_data(&mut h, name, *bytes).unwrap();
            }
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn pinned(body: &[u8]) -> RemoteArchive {
        RemoteArchive {
            len: body.len() as u64,
            checksum: Checksum::Sha256(Box::leak(
                format!("{:x}", Sha256::digest(body)).into_boxed_str(),
            )),
            max_bytes: 1 << 20,
            ..FLOWER_PHOTOS
        }
    }

    fn serve(body: Vec<u8>) -> Server {
        Server::start(HashMap::from([("a.tgz", Reply::Body(body))]), 1)
    }

    #[test]
    fn a_good_archive_lands_as_class_folders() {
        let photo = std::fs::read(
            crate::data::test_data_dir().join("flowers/daisy/102841525_bd6628ae3c.jpg"),
        )
        .unwrap();
        let body = tgz(
            &[
                ("flower_photos/LICENSE.txt", b"CC-BY"),
                ("flower_photos/daisy/1.jpg", &photo),
                ("flower_photos/roses/2.jpg", &photo),
            ],
            false,
        );
        let root = scratch("good");
        let dest = root.join("flowers");
        let server = serve(body.clone());
        download_archive(&pinned(&body), &format!("{}a.tgz", server.base), &dest).unwrap();
        assert_eq!(server.finish(), 1);
        assert_eq!(std::fs::read(dest.join("daisy/1.jpg")).unwrap(), photo);
        assert!(dest.join("roses/2.jpg").is_file() && dest.join("LICENSE.txt").is_file());
        // Only the set's folder is left: no temp file or folder beside it.
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn bad_checksum_escaping_paths_and_links_leave_nothing() {
        let good = tgz(&[("top/daisy/1.jpg", b"x")], false);
        let escaping = tgz(&[("../evil.jpg", b"x")], true);
        let absolute = tgz(&[("/tmp/evil.jpg", b"x")], true);
        let cases: Vec<(RemoteArchive, Vec<u8>, &str)> = vec![
            (
                RemoteArchive {
                    checksum: Checksum::Sha256("00"),
                    ..pinned(&good)
                },
                good.clone(),
                "expected sha256 00",
            ),
            (pinned(&escaping), escaping, "inside the archive's folder"),
            (pinned(&absolute), absolute, "inside the archive's folder"),
            (
                RemoteArchive {
                    max_bytes: 10,
                    ..pinned(&good)
                },
                good.clone(),
                "at most 10 bytes",
            ),
        ];
        for (archive, body, needle) in cases {
            let root = scratch("bad");
            let server = serve(body);
            let e = download_archive(
                &archive,
                &format!("{}a.tgz", server.base),
                &root.join("flowers"),
            )
            .unwrap_err()
            .to_string();
            server.finish();
            assert!(e.contains(needle) && e.contains("nothing was kept"), "{e}");
            assert!(e.contains("a.tgz"), "the error names the URL: {e}");
            assert_eq!(
                std::fs::read_dir(&root).unwrap().count(),
                0,
                "{needle}: left files"
            );
            assert!(!std::env::temp_dir().join("evil.jpg").exists());
            std::fs::remove_dir_all(&root).unwrap();
        }
    }

    #[test]
    fn numbered_runs_sort_into_classes() {
        let a = FLOWERS17;
        let t = |f: &str| photo_target(&a, &["jpg".into(), f.into()]);
        assert_eq!(
            t("image_0001.jpg"),
            Some(PathBuf::from("daffodil/image_0001.jpg"))
        );
        assert_eq!(
            t("image_0080.jpg"),
            Some(PathBuf::from("daffodil/image_0080.jpg"))
        );
        assert_eq!(
            t("image_0081.jpg"),
            Some(PathBuf::from("snowdrop/image_0081.jpg"))
        );
        assert_eq!(
            t("image_1360.jpg"),
            Some(PathBuf::from("pansy/image_1360.jpg"))
        );
        assert_eq!(t("image_1361.jpg"), None);
        assert_eq!(t("image_0000.jpg"), None);
        assert_eq!(t("files.txt"), Some(PathBuf::from("files.txt")));
    }
}
