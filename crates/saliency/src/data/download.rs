//! Downloading Fashion-MNIST: fetch to a temp file, verify its sha256, and only then rename it into place.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
#[cfg(feature = "download")]
use std::time::Duration;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::data::error::{DataError, DownloadFailure};
use crate::data::idx::GZIP_MAGIC;
use crate::data::locate::{locate_fashion_mnist, Found, Origin};

/// Zalando's official mirror of the four `.gz` files.
pub const OFFICIAL_BASE_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/// One downloadable file with the checksums that prove it is the official data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name, also the last URL component.
    pub name: &'static str,
    /// sha256 of the official `.gz` file.
    pub gz_sha256: &'static str,
    /// Length of the official `.gz` file in bytes.
    pub gz_len: u64,
    /// sha256 of the decompressed IDX file (the same for any faithful copy, whatever its gzip header).
    pub raw_sha256: &'static str,
    /// Length of the decompressed IDX file in bytes.
    pub raw_len: u64,
}

/// The four files (from shared/data/README.md), in the order of `fashion_mnist::FILE_STEMS`.
pub const FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        gz_sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        gz_len: 26_421_880,
        raw_sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        raw_len: 47_040_016,
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        gz_sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        gz_len: 29_515,
        raw_sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        raw_len: 60_008,
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        gz_sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        gz_len: 4_422_102,
        raw_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        raw_len: 7_840_016,
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        gz_sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        gz_len: 5_148,
        raw_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        raw_len: 10_008,
    },
];

/// Downloads the four files from `base_url` into `dest` (created if needed).
///
/// Files already in `dest` that verify are kept and not fetched again. Each file is streamed to
/// a temp file in `dest`, verified (sha256 of the `.gz`, or of its decompressed bytes so that
/// re-headered copies such as Debian's also pass), and renamed into place only when good; a bad
/// or interrupted download is deleted. Every file is tried; the error lists each failure with the
/// URL, the expected and found sha256 and length, or the HTTP status.
/// Without the `download` feature every file fails with that reason.
pub fn download_fashion_mnist(base_url: &str, dest: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(dest).map_err(|e| DataError::io("creating folder", dest, e))?;
    // Read timeout per read call, not for the whole transfer, so a slow link still finishes.
    #[cfg(feature = "download")]
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    #[cfg(not(feature = "download"))]
    let agent = ();
    let mut failures = Vec::new();
    for file in &FILES {
        let path = dest.join(file.name);
        if path.is_file() && check(&path, file).is_ok() {
            continue;
        }
        let url = join_url(base_url, file.name);
        if let Err(reason) = fetch_verified(&agent, &url, &path, file) {
            failures.push(DownloadFailure { url, path, reason });
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(DataError::Download {
            failures,
            hint: String::new(),
        })
    }
}

/// What to do when the Fashion-MNIST download fails.
pub const FASHION_MNIST_HINT: &str = "other ways to get Fashion-MNIST: --data-dir DIR or \
SALIENCY_DATA=DIR naming a folder that holds the four files (or DIR/fashion-mnist), Debian's \
`apt-get install dataset-fashion-mnist` (read from /usr/share/datasets), or --no-download to use \
only the copies on disk (the sample shipped in data/sample when there is no full copy)";

/// The Fashion-MNIST folder, in this order: a full copy found by `find_fashion_mnist`; else (when
/// `allow_download`) the official files downloaded into `<data_dir>/fashion-mnist`, or
/// `./data/fashion-mnist` without a `data_dir`; else, without a `data_dir`, the sample shipped in
/// `data/sample` (its `note` says why).
///
/// A failed download leaves no folder it created behind, and its error names the other ways to
/// get the data.
pub fn ensure_fashion_mnist(
    data_dir: Option<&Path>,
    allow_download: bool,
) -> Result<Found, DataError> {
    ensure_from(data_dir, allow_download, OFFICIAL_BASE_URL)
}

/// Refuses a folder standing where one of the four files belongs (in `root` or
/// `root/fashion-mnist`): it used to count as "not found", start a download, and leave an empty
/// folder behind.
fn folder_where_a_file_belongs(root: &Path) -> Result<(), DataError> {
    use crate::data::fashion_mnist::{FILE_STEMS, SUBFOLDER};
    for dir in [root.to_path_buf(), root.join(SUBFOLDER)] {
        for stem in FILE_STEMS {
            for path in [dir.join(stem), dir.join(format!("{stem}.gz"))] {
                if path.is_dir() {
                    return Err(DataError::Folder {
                        path,
                        expected: "a Fashion-MNIST IDX file (optionally .gz)".into(),
                        found: "a folder".into(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// `ensure_fashion_mnist` with the mirror as a parameter, for tests.
fn ensure_from(
    data_dir: Option<&Path>,
    allow_download: bool,
    base_url: &str,
) -> Result<Found, DataError> {
    folder_where_a_file_belongs(data_dir.unwrap_or(Path::new("data")))?;
    if let Ok(found) = locate_fashion_mnist(data_dir) {
        if found.origin == Origin::Full || !allow_download {
            return Ok(found);
        }
    }
    let failed = if allow_download {
        let dest = data_dir
            .unwrap_or(Path::new("data"))
            .join(crate::data::fashion_mnist::SUBFOLDER);
        match download_into_new_folders(&dest, |d| download_fashion_mnist(base_url, d)) {
            Ok(()) => {
                return Ok(Found {
                    dir: dest,
                    origin: Origin::Full,
                    note: None,
                })
            }
            Err(e) => Some(e),
        }
    } else {
        None
    };
    match (locate_fashion_mnist(data_dir), failed) {
        (Ok(mut found), Some(e)) => {
            found.note = Some(format!(
                "{e}\nso the sample shipped in {} is used instead (12,000 of the 70,000 \
                 images); {FASHION_MNIST_HINT}",
                found.dir.display()
            ));
            Ok(found)
        }
        (Ok(found), None) => Ok(found),
        (Err(_), Some(DataError::Download { failures, .. })) => Err(DataError::Download {
            failures,
            hint: FASHION_MNIST_HINT.to_string(),
        }),
        (Err(not_found), _) => Err(not_found),
    }
}

/// Runs `download` into `dest`, creating its missing folders; on failure removes each folder it
/// created that is still empty, so a failed download leaves nothing behind.
pub(crate) fn download_into_new_folders(
    dest: &Path,
    download: impl FnOnce(&Path) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let created: Vec<PathBuf> = dest
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .map(Path::to_path_buf)
        .collect();
    let result = download(dest);
    if result.is_err() {
        // Deepest first; remove_dir refuses a folder that is not empty, which keeps good files.
        for dir in &created {
            let _ = std::fs::remove_dir(dir);
        }
    }
    result
}

/// Checks that `path` holds `file`'s official content (see `download_fashion_mnist`).
pub fn verify_file(path: &Path, file: &RemoteFile) -> Result<(), DataError> {
    check(path, file).map_err(|found| DataError::Format {
        file: path.display().to_string(),
        field: "checksum".into(),
        expected: expected_text(file),
        found,
        hint: String::new(),
    })
}

fn join_url(base: &str, name: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

fn expected_text(file: &RemoteFile) -> String {
    format!(
        "sha256 {} ({} bytes), or gzip data decompressing to sha256 {} ({} bytes)",
        file.gz_sha256, file.gz_len, file.raw_sha256, file.raw_len
    )
}

/// Without the `download` feature: the reason nothing can be fetched.
#[cfg(not(feature = "download"))]
fn fetch_verified(_: &(), _: &str, _: &Path, _: &RemoteFile) -> Result<(), String> {
    Err("this build of saliency has no `download` feature".into())
}

/// Fetches `url` into a temp file beside `path`, verifies it and renames it to `path`.
/// The error is the reason, for a `DownloadFailure`.
#[cfg(feature = "download")]
fn fetch_verified(
    agent: &ureq::Agent,
    url: &str,
    path: &Path,
    file: &RemoteFile,
) -> Result<(), String> {
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, _) => format!("expected HTTP status 200, found {code}"),
        ureq::Error::Transport(t) => format!("expected a response, found a transport error: {t}"),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.part-{}", file.name, std::process::id()));
    let result = stream_to(response.into_reader(), &tmp, file)
        .and_then(|()| {
            check(&tmp, file)
                .map_err(|found| format!("expected {}, found {found}", expected_text(file)))
        })
        .and_then(|()| {
            std::fs::rename(&tmp, path).map_err(|e| format!("a failed rename into place: {e}"))?;
            // Persist the rename; best effort, as not every platform can open a folder.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        });
    result.map_err(|reason| {
        let _ = std::fs::remove_file(&tmp);
        format!("{reason}; the partial file was deleted")
    })
}

#[cfg(feature = "download")]
/// Copies the body into `tmp` (fsynced), refusing bodies longer than any faithful copy could be.
fn stream_to(body: impl Read, tmp: &Path, file: &RemoteFile) -> Result<(), String> {
    // A faithful copy is at most a re-headered `.gz` (a few bytes more) or, from a mirror that
    // decompresses, the raw file; anything longer is refused before it fills the disk.
    let cap = file.raw_len.max(file.gz_len) + 64 * 1024;
    let mut out = File::create(tmp)
        .map_err(|e| format!("a failed temp file creation at {}: {e}", tmp.display()))?;
    let copied = std::io::copy(&mut body.take(cap + 1), &mut out);
    let n = copied.map_err(|e| {
        format!(
            "expected {} bytes, found an interrupted transfer: {e}",
            file.gz_len
        )
    })?;
    if n > cap {
        return Err(format!("expected at most {cap} bytes, found a longer body"));
    }
    out.flush()
        .and_then(|()| out.sync_all())
        .map_err(|e| format!("a failed write to {}: {e}", tmp.display()))
}

/// `Ok` when `path` holds the official `.gz` or any gzip (or raw) file whose content is the
/// official IDX; otherwise the found sha256 and lengths.
fn check(path: &Path, file: &RemoteFile) -> Result<(), String> {
    let (sha, len, head) = hash_file(path)?;
    if sha == file.gz_sha256 && len == file.gz_len {
        return Ok(());
    }
    let mut found = format!("sha256 {sha} ({len} bytes)");
    if head == GZIP_MAGIC {
        let f = File::open(path).map_err(|e| format!("an unreadable file ({e})"))?;
        // One byte past the official length is enough to know it is wrong.
        let mut gz = MultiGzDecoder::new(BufReader::new(f)).take(file.raw_len + 1);
        match hash_reader(&mut gz) {
            Ok((raw_sha, raw_len)) if raw_sha == file.raw_sha256 && raw_len == file.raw_len => {
                return Ok(())
            }
            Ok((raw_sha, raw_len)) => found.push_str(&format!(
                ", decompressing to sha256 {raw_sha} ({raw_len} bytes)"
            )),
            Err(e) => found.push_str(&format!(", which does not decompress ({e})")),
        }
    } else if sha == file.raw_sha256 && len == file.raw_len {
        // A raw IDX file under the .gz name; `read_idx_file` detects gzip by content, so it loads.
        return Ok(());
    }
    Err(found)
}

/// sha256 (hex), length and first two bytes of a file.
fn hash_file(path: &Path) -> Result<(String, u64, [u8; 2]), String> {
    let f = File::open(path).map_err(|e| format!("an unreadable file ({e})"))?;
    let mut first = Vec::with_capacity(2);
    f.take(2)
        .read_to_end(&mut first)
        .map_err(|e| format!("an unreadable file ({e})"))?;
    let head = if first.len() == 2 {
        [first[0], first[1]]
    } else {
        [0, 0]
    };
    let f = File::open(path).map_err(|e| format!("an unreadable file ({e})"))?;
    let (sha, len) =
        hash_reader(&mut BufReader::new(f)).map_err(|e| format!("an unreadable file ({e})"))?;
    Ok((sha, len, head))
}

fn hash_reader(r: &mut impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((format!("{:x}", hasher.finalize()), len))
}

#[cfg(all(test, feature = "download"))]
mod tests {
    use super::*;
    use crate::data::test_server::{Reply, Server};
    use std::collections::HashMap;

    fn real(name: &str) -> Vec<u8> {
        std::fs::read(
            crate::data::test_data_dir()
                .join("fashion-mnist")
                .join(name),
        )
        .unwrap()
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("saliency-dl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn no_part_files(dir: &Path) -> bool {
        std::fs::read_dir(dir)
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().contains(".part-"))
    }

    fn failures(e: DataError) -> Vec<DownloadFailure> {
        match e {
            DataError::Download { failures, .. } => failures,
            other => panic!("expected a download error, found {other}"),
        }
    }

    #[test]
    #[cfg_attr(
        not(full_fashion_mnist),
        ignore = "needs the full Fashion-MNIST (official files to serve; set SALIENCY_DATA)"
    )]
    fn good_files_land_bad_ones_are_deleted_and_reported() {
        let root = scratch("mixed");
        let dest = root.join("fashion-mnist");
        // Debian-style copy: a different gzip mtime changes the .gz sha256 but not the content.
        let mut reheadered = real("train-labels-idx1-ubyte.gz");
        reheadered[4..8].copy_from_slice(&0x6000_0000u32.to_le_bytes());
        let mut corrupt = real("t10k-images-idx3-ubyte.gz");
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0x55;
        let routes = HashMap::from([
            ("train-labels-idx1-ubyte.gz", Reply::Body(reheadered)),
            (
                "t10k-labels-idx1-ubyte.gz",
                Reply::Body(real("t10k-labels-idx1-ubyte.gz")),
            ),
            ("t10k-images-idx3-ubyte.gz", Reply::Body(corrupt)),
        ]);
        let server = Server::start(routes, 4);
        let fails = failures(download_fashion_mnist(&server.base, &dest).unwrap_err());
        assert_eq!(server.finish(), 4);

        for good in [&FILES[1], &FILES[3]] {
            verify_file(&dest.join(good.name), good).unwrap();
        }
        assert_eq!(fails.len(), 2, "{fails:?}");
        let by_name = |n: &str| {
            fails
                .iter()
                .find(|f| f.url.ends_with(n))
                .unwrap_or_else(|| panic!("{n} not reported: {fails:?}"))
        };
        let bad = by_name("t10k-images-idx3-ubyte.gz");
        assert!(
            bad.reason.contains(FILES[2].gz_sha256)
                && bad.reason.contains("found sha256")
                && bad.reason.contains("deleted"),
            "{}",
            bad.reason
        );
        assert!(by_name("train-images-idx3-ubyte.gz")
            .reason
            .contains("found 404"));
        assert!(!dest.join(FILES[0].name).exists() && !dest.join(FILES[2].name).exists());
        assert!(no_part_files(&dest));

        // A good mirror now: only the two missing files are fetched, then the set loads.
        let routes = HashMap::from([
            (
                "train-images-idx3-ubyte.gz",
                Reply::Body(real("train-images-idx3-ubyte.gz")),
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                Reply::Body(real("t10k-images-idx3-ubyte.gz")),
            ),
        ]);
        let server = Server::start(routes, 4);
        download_fashion_mnist(&server.base, &dest).unwrap();
        assert_eq!(
            ensure_from(Some(&root), true, &server.base).unwrap().dir,
            dest
        );
        assert_eq!(
            server.finish(),
            2,
            "files already present are not fetched again"
        );
        for f in &FILES {
            verify_file(&dest.join(f.name), f).unwrap();
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn truncated_cut_short_and_missing_downloads_are_reported() {
        let dest = scratch("trunc");
        let labels = real("train-labels-idx1-ubyte.gz");
        let routes = HashMap::from([
            (
                "train-labels-idx1-ubyte.gz",
                Reply::Body(labels[..1000].to_vec()),
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                Reply::CutShort {
                    body: labels[..2000].to_vec(),
                    claimed: 5148,
                },
            ),
        ]);
        let server = Server::start(routes, 4);
        let fails = failures(download_fashion_mnist(&server.base, &dest).unwrap_err());
        assert_eq!(server.finish(), 4);
        assert_eq!(fails.len(), 4, "{fails:?}");
        let truncated = &fails[1];
        assert_eq!(truncated.path, dest.join("train-labels-idx1-ubyte.gz"));
        assert!(
            truncated.reason.contains("(1000 bytes)") && truncated.reason.contains("(29515 bytes)"),
            "{}",
            truncated.reason
        );
        assert!(
            truncated.reason.contains("does not decompress"),
            "{}",
            truncated.reason
        );
        assert!(
            fails[3].reason.contains("interrupted"),
            "{}",
            fails[3].reason
        );
        let msg = DataError::Download {
            failures: fails,
            hint: String::new(),
        }
        .to_string();
        assert!(
            msg.contains("download failed for 4 file(s)")
                && msg.contains("t10k-labels-idx1-ubyte.gz"),
            "{msg}"
        );
        assert_eq!(
            std::fs::read_dir(&dest).unwrap().count(),
            0,
            "nothing bad is left behind"
        );
        std::fs::remove_dir_all(&dest).unwrap();
    }

    #[test]
    fn ensure_without_download_lists_places() {
        let root = scratch("ensure");
        let m = ensure_from(Some(&root), false, "http://127.0.0.1:9/")
            .unwrap_err()
            .to_string();
        assert!(
            m.contains(&root.join("fashion-mnist").display().to_string()),
            "{m}"
        );
        let real_root = crate::data::test_data_dir();
        assert_eq!(
            ensure_fashion_mnist(Some(&real_root), false).unwrap().dir,
            real_root.join("fashion-mnist")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn verify_file_names_file_and_both_checksums() {
        let dir = scratch("verify");
        let p = dir.join("t10k-labels-idx1-ubyte.gz");
        std::fs::write(&p, b"nope").unwrap();
        let m = verify_file(&p, &FILES[3]).unwrap_err().to_string();
        assert!(
            m.contains(&p.display().to_string())
                && m.contains(FILES[3].gz_sha256)
                && m.contains(FILES[3].raw_sha256)
                && m.contains("(4 bytes)"),
            "{m}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
