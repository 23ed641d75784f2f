//! `attribute --image FILE...`: a user's PNG or JPEG files as a batch of the model's input.

use std::path::PathBuf;

use anyhow::{bail, Context};
use image::imageops::FilterType;
use tensor::Tensor;

/// Reads every file, converts it to the model's channels (gray for 1, RGB for 3) and, when its
/// size differs from the model's (H, W), resizes it (triangle filter) with a note on stderr.
/// Values are scaled to [0, 1] by 1/255. Errors name the file.
pub fn load_user_images(paths: &[PathBuf], input: [usize; 3]) -> anyhow::Result<Tensor<f32>> {
    let [c, h, w] = input;
    if c != 1 && c != 3 {
        bail!("--image: the model takes {c} channels; only 1 (gray) or 3 (RGB) images can be read");
    }
    let mut data = Vec::with_capacity(paths.len() * c * h * w);
    for path in paths {
        let shown = path.display();
        let img = image::ImageReader::open(path)
            .with_context(|| format!("--image {shown}: cannot open the file"))?
            .with_guessed_format()
            .with_context(|| format!("--image {shown}: cannot read the file"))?
            .decode()
            .with_context(|| format!("--image {shown}: expected a PNG or JPEG image"))?;
        let (iw, ih) = (img.width() as usize, img.height() as usize);
        if iw == 0 || ih == 0 {
            bail!("--image {shown}: the image is empty ({iw}x{ih})");
        }
        let img = if (ih, iw) != (h, w) {
            eprintln!("note: --image {shown}: {iw}x{ih} resized to the model's {w}x{h}");
            img.resize_exact(w as u32, h as u32, FilterType::Triangle)
        } else {
            img
        };
        if c == 1 {
            data.extend(img.to_luma8().pixels().map(|p| f32::from(p.0[0]) / 255.0));
        } else {
            let rgb = img.to_rgb8();
            for ch in 0..3 {
                data.extend(rgb.pixels().map(|p| f32::from(p.0[ch]) / 255.0));
            }
        }
    }
    Ok(Tensor::from_vec(&[paths.len(), c, h, w], data)?)
}

/// `--reference FILE`: one PNG or JPEG of exactly the model's (H, W) (a reference is not resized:
/// its pixels are the point the attribution is measured from), as a (1, C, H, W) tensor.
pub fn load_reference(path: &std::path::Path, input: [usize; 3]) -> anyhow::Result<Tensor<f32>> {
    let [_, h, w] = input;
    let (iw, ih) = image::image_dimensions(path).with_context(|| {
        format!(
            "--reference {}: expected a PNG or JPEG image",
            path.display()
        )
    })?;
    if (ih as usize, iw as usize) != (h, w) {
        bail!(
            "--reference {}: expected an image of the model's input size {w}x{h}, found {iw}x{ih}",
            path.display()
        );
    }
    load_user_images(&[path.to_path_buf()], input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_converted_resized_and_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("saliency-user-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join("a.png");
        let img = image::RgbImage::from_fn(4, 2, |x, _| image::Rgb([(x * 60) as u8, 0, 255]));
        img.save(&png).unwrap();
        let t = load_user_images(std::slice::from_ref(&png), [3, 2, 4]).unwrap();
        assert_eq!(t.shape(), &[1, 3, 2, 4]);
        assert_eq!(t.data()[1], 60.0 / 255.0);
        assert_eq!(t.data()[16], 1.0);
        let small = load_user_images(std::slice::from_ref(&png), [1, 28, 28]).unwrap();
        assert_eq!(small.shape(), &[1, 1, 28, 28]);
        let bad = dir.join("b.png");
        std::fs::write(&bad, b"not an image").unwrap();
        let err = format!("{:#}", load_user_images(&[bad], [1, 28, 28]).unwrap_err());
        assert!(err.contains("--image") && err.contains("b.png"), "{err}");
        let err = format!(
            "{:#}",
            load_user_images(&[dir.join("none.png")], [1, 28, 28]).unwrap_err()
        );
        assert!(err.contains("none.png"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
