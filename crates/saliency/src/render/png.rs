//! Saving images as PNG crash-safely: encode in memory, then replace the file atomically.

use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use super::RenderError;
use crate::atomic_file::write_atomic;

/// Encodes `img` as PNG and writes it to `path`, so that `path` holds either its old content or
/// the whole new picture, never a half-written one. Errors name the path.
pub fn save_png(path: &Path, img: &RgbImage) -> Result<(), RenderError> {
    let bytes = encode_png(img).map_err(|source| RenderError::Png {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes).map_err(|source| RenderError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `img` as PNG file bytes.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    )?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn round_trips() {
        let dir = std::env::temp_dir().join(format!("saliency-render-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.png");
        let img = RgbImage::from_fn(7, 5, |x, y| Rgb([x as u8 * 30, y as u8 * 40, 200]));
        save_png(&path, &img).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back, img);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn error_names_the_path() {
        let path = Path::new("/nonexistent-saliency-dir/fig.png");
        let err = save_png(path, &RgbImage::new(2, 2)).unwrap_err();
        assert!(matches!(err, RenderError::Io { .. }));
        assert!(
            err.to_string()
                .contains("/nonexistent-saliency-dir/fig.png"),
            "{err}"
        );
    }
}
