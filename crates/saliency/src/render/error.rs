//! The one error type of the render module: every variant names the file or value it is about.

use std::io;
use std::path::PathBuf;

/// What can go wrong while drawing or saving a figure.
///
/// Drawing itself is infallible (shapes are checked by assertions, since they come from our own
/// code); errors come from files and from text a user typed, so each variant names the path or the
/// value, and what was expected.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Creating, writing or renaming a file failed.
    #[error("saving {}: {source}", path.display())]
    Io {
        /// The file we were writing (the final name, not the temp file).
        path: PathBuf,
        /// The underlying failure.
        source: io::Error,
    },
    /// The PNG encoder refused the image.
    #[error("encoding {} as PNG: {source}", path.display())]
    Png {
        /// The file the PNG was meant for.
        path: PathBuf,
        /// The encoder's error.
        source: image::ImageError,
    },
    /// The GIF encoder failed (usually an I/O error underneath).
    #[error("writing GIF {}: {source}", path.display())]
    Gif {
        /// The final name of the GIF.
        path: PathBuf,
        /// The encoder's error.
        source: gif::EncodingError,
    },
    /// A movie frame does not have the size the movie was created with.
    #[error(
        "frame {frame} of {}: expected {expected_width}x{expected_height} pixels, found {found_width}x{found_height}",
        path.display()
    )]
    FrameSize {
        /// The final name of the GIF.
        path: PathBuf,
        /// Zero-based index the frame would have had.
        frame: usize,
        /// Width given to `GifMovie::create`.
        expected_width: u32,
        /// Height given to `GifMovie::create`.
        expected_height: u32,
        /// Width of the frame passed in.
        found_width: u32,
        /// Height of the frame passed in.
        found_height: u32,
    },
    /// A movie was asked for with a zero width or height.
    #[error("GIF {}: size {width}x{height}, expected both at least 1", path.display())]
    EmptyMovie {
        /// The final name of the GIF.
        path: PathBuf,
        /// Requested width.
        width: u16,
        /// Requested height.
        height: u16,
    },
    /// A color map name that is not one of ours.
    #[error("unknown color map {found:?}, expected one of: inferno, viridis, gray, redblue")]
    UnknownColorMap {
        /// The text that was given.
        found: String,
    },
}
