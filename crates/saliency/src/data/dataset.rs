//! `Dataset`: images as f32 in [0, 1] (N, C, H, W) with labels and class names.

/// A labelled image set held in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Short name for messages and metadata, e.g. `fashion-mnist/test`.
    pub name: String,
    /// Pixels scaled to [0, 1], row-major (N, C, H, W).
    pub images: Vec<f32>,
    /// One label per image, each `< class_names.len()`.
    pub labels: Vec<u32>,
    /// (C, H, W) of one image.
    pub shape: [usize; 3],
    /// Class names in label order.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Elements in one image (C * H * W).
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// A new dataset holding the images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize], name: &str) -> Dataset {
        let n = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            name: name.to_string(),
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape,
            class_names: self.class_names.clone(),
        }
    }

    /// The first `n` images (all of them when `n >= len`).
    pub fn take(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&idx, &self.name)
    }
}
