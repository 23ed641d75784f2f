//! What the study tells its user while it runs: step starts and ends, lines of news (epochs,
//! skips, notes) and the progress inside a long step (minibatches trained, images attacked).
//!
//! The library prints plain lines on standard error ([`Lines`]); the CLI installs an observer
//! that draws a progress bar (indicatif) when standard error is a terminal. The observer is
//! process-wide rather than a parameter, so that the sections, the step runner and the training
//! helper report through it without every signature carrying it; [`with_observer`] installs one
//! for the length of a call and puts the previous one back.

use std::sync::{Arc, PoisonError, RwLock};

/// Receives the study's progress. Called from the thread that runs the study.
pub trait StudyProgress: Send + Sync {
    /// Step `name` starts computing.
    fn step_started(&self, name: &str);
    /// Inside the current step: `done` of `total` units (`unit`: "batches", "images") finished.
    fn work(&self, done: u64, total: u64, unit: &str);
    /// Step `name` finished after `seconds`; `reused` when an earlier run's result was taken.
    fn step_finished(&self, name: &str, seconds: f64, reused: bool);
    /// A line of news: an epoch's metrics, a skipped section, a note on the data.
    fn line(&self, text: &str);
}

/// Plain lines on standard error: the default, and what a log file of the run holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lines;

impl StudyProgress for Lines {
    fn step_started(&self, name: &str) {
        eprintln!("[{name}] ...");
    }
    fn work(&self, _done: u64, _total: u64, _unit: &str) {}
    fn step_finished(&self, name: &str, seconds: f64, reused: bool) {
        if reused {
            eprintln!("[{name}] done in an earlier run ({seconds:.1} s), skipped");
        } else {
            eprintln!("[{name}] done in {seconds:.1} s");
        }
    }
    fn line(&self, text: &str) {
        eprintln!("{text}");
    }
}

static OBSERVER: RwLock<Option<Arc<dyn StudyProgress>>> = RwLock::new(None);

/// The installed observer, or [`Lines`].
fn current() -> Arc<dyn StudyProgress> {
    OBSERVER
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| Arc::new(Lines))
}

/// Runs `f` with `observer` receiving the study's progress, then restores the previous one.
pub fn with_observer<R>(observer: Arc<dyn StudyProgress>, f: impl FnOnce() -> R) -> R {
    let previous = OBSERVER
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(observer);
    // Restored even when `f` panics, so a test's observer never leaks into the next test.
    struct Restore(Option<Arc<dyn StudyProgress>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            *OBSERVER.write().unwrap_or_else(PoisonError::into_inner) = self.0.take();
        }
    }
    let _restore = Restore(previous);
    f()
}

/// Reports that step `name` starts.
pub fn step_started(name: &str) {
    current().step_started(name);
}

/// Reports progress inside the current step.
pub fn work(done: u64, total: u64, unit: &str) {
    current().work(done, total, unit);
}

/// Reports that step `name` finished.
pub fn step_finished(name: &str, seconds: f64, reused: bool) {
    current().step_finished(name, seconds, reused);
}

/// Reports a line of news.
pub fn line(text: impl AsRef<str>) {
    current().line(text.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every call, to check what the study reports.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl StudyProgress for Recorder {
        fn step_started(&self, name: &str) {
            self.0.lock().unwrap().push(format!("start {name}"));
        }
        fn work(&self, done: u64, total: u64, unit: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{done}/{total} {unit}"));
        }
        fn step_finished(&self, name: &str, _seconds: f64, reused: bool) {
            self.0.lock().unwrap().push(format!("end {name} {reused}"));
        }
        fn line(&self, text: &str) {
            self.0.lock().unwrap().push(text.into());
        }
    }

    #[test]
    fn an_installed_observer_hears_the_calls_and_is_removed_afterwards() {
        let recorder = Arc::new(Recorder::default());
        with_observer(recorder.clone(), || {
            step_started("progress-test");
            work(3, 10, "progress-test");
            line("progress-test news");
            step_finished("progress-test", 1.0, false);
        });
        // Outside the scope the calls go to the default lines, not to the recorder.
        line("progress-test after");
        // Other tests of this process may report while the recorder is installed: keep ours.
        let heard: Vec<String> = recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("progress-test"))
            .cloned()
            .collect();
        assert_eq!(
            heard,
            [
                "start progress-test",
                "3/10 progress-test",
                "progress-test news",
                "end progress-test false"
            ]
        );
    }
}
