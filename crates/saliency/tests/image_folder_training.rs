//! Training on an image folder read a minibatch at a time (`ImageFiles`) gives the same bits as
//! training on the same images decoded whole up front (`Dataset`), with or without a cache, on
//! 1 or 2 threads.

mod common;

use std::path::PathBuf;

use saliency::data::{
    list_image_folder, CacheBudget, Dataset, ImageFiles, ImageFolderOptions, ImageSource,
};
use saliency::models::ModelKind;
use saliency::train::{evaluate, Augment, EpochMetrics, TrainConfig, Trainer};

fn options() -> ImageFolderOptions {
    ImageFolderOptions {
        size: 28,
        classes: Some(vec!["roses".into(), "tulips".into()]),
        ..ImageFolderOptions::default()
    }
}

fn config() -> TrainConfig {
    let mut c = TrainConfig::study(ModelKind::Deep);
    c.dataset = "flowers".into();
    c.epochs = 2;
    // 64 training images: four minibatches of 15 and a last one of 4.
    c.batch_size = 15;
    c.augment = Augment {
        hflip: true,
        max_shift: 2,
    };
    c
}

/// The final weights' bits, the metrics without their timings, and model.safetensors.
type Outcome = (Vec<u32>, Vec<(f64, f64, f64, f64)>, Vec<u8>);

fn train(train: &dyn ImageSource, test: &dyn ImageSource, threads: usize, tag: &str) -> Outcome {
    let dir = std::env::temp_dir().join(format!(
        "saliency-folder-training-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let (model, metrics) = pool.install(|| {
        let mut t = Trainer::new(config(), train.shape(), train.class_names().to_vec()).unwrap();
        let metrics = t
            .run(train, test, Some(&dir), &mut [], &mut |_| {})
            .unwrap();
        (t.model, metrics)
    });
    let weights = model
        .params
        .iter()
        .flat_map(|p| p.data().iter().map(|v| v.to_bits()))
        .collect();
    let scores = metrics
        .iter()
        .map(|m: &EpochMetrics| (m.train_loss, m.train_accuracy, m.test_loss, m.test_accuracy))
        .collect();
    let file = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (weights, scores, file)
}

fn flowers() -> PathBuf {
    common::data_root().join("flowers")
}

#[test]
fn lazy_and_dense_training_give_the_same_bits() {
    let listing = list_image_folder(&flowers(), &options()).unwrap();
    assert_eq!(listing.len(), 80, "the shipped sample: 40 roses, 40 tulips");
    let train_idx: Vec<usize> = (0..80).filter(|i| i % 5 != 0).collect();
    let test_idx: Vec<usize> = (0..80).filter(|i| i % 5 == 0).collect();
    let decode =
        |idx: &[usize], name| -> Dataset { listing.decode(idx, &options(), name).unwrap().0 };
    let (dense_train, dense_test) = (decode(&train_idx, "train"), decode(&test_idx, "test"));
    let dense = train(&dense_train, &dense_test, 1, "dense");

    let per = 3 * 28 * 28;
    // No cache (every image decoded per minibatch), a cache for part of the set, and one for all.
    for (limit, threads) in [(0, 1), (0, 2), (20 * per as u64, 2), (1 << 30, 1)] {
        let budget = CacheBudget::new(limit);
        let open = |idx: &[usize], name| {
            ImageFiles::open(&listing, idx, &options(), name, &budget)
                .unwrap()
                .0
        };
        let (lazy_train, lazy_test) = (open(&train_idx, "train"), open(&test_idx, "test"));
        assert!(budget.used() <= limit);
        let lazy = train(
            &lazy_train,
            &lazy_test,
            threads,
            &format!("lazy-{limit}-{threads}"),
        );
        assert!(
            lazy.0 == dense.0,
            "weights differ (cache limit {limit}, {threads} thread(s))"
        );
        assert_eq!(
            lazy.1, dense.1,
            "metrics (cache limit {limit}, {threads} thread(s))"
        );
        assert!(
            lazy.2 == dense.2,
            "model.safetensors differs (cache limit {limit})"
        );
        assert!(budget.used() <= limit, "the cache stayed within its budget");
    }
    // An untrained model evaluates the same either way.
    let model = ModelKind::Deep.build([3, 28, 28], 2, 5).unwrap();
    let budget = CacheBudget::new(0);
    let (lazy_test, _) =
        ImageFiles::open(&listing, &test_idx, &options(), "test", &budget).unwrap();
    assert_eq!(
        evaluate(&model, &lazy_test).unwrap(),
        evaluate(&model, &dense_test).unwrap()
    );
}
