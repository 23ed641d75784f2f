//! The study's progress bar: the running step, its elapsed time and the work inside it (batches
//! trained, images attacked), drawn on standard error by indicatif.
//!
//! When standard error is not a terminal indicatif hides the bar, and the lines of news still
//! reach the log exactly as the library's plain [`Lines`] print them.

use indicatif::{ProgressBar, ProgressStyle};

use crate::study::progress::{Lines, StudyProgress};

/// A study observer drawing one bar for the step in progress.
pub struct StudyBar {
    bar: ProgressBar,
}

impl StudyBar {
    /// A bar on standard error (hidden by indicatif when that is not a terminal).
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {prefix} [{bar:30}] {pos}/{len} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        Self { bar }
    }

    /// Prints `f`'s lines above the bar (or plainly when the bar is hidden).
    fn say(&self, f: impl FnOnce()) {
        self.bar.suspend(f);
    }
}

impl Default for StudyBar {
    fn default() -> Self {
        Self::new()
    }
}

impl StudyProgress for StudyBar {
    fn step_started(&self, name: &str) {
        self.say(|| Lines.step_started(name));
        self.bar.reset();
        self.bar.set_prefix(name.to_string());
        self.bar.set_length(0);
        self.bar.set_message("");
    }

    fn work(&self, done: u64, total: u64, unit: &str) {
        self.bar.set_length(total);
        self.bar.set_position(done);
        if self.bar.message() != unit {
            self.bar.set_message(unit.to_string());
        }
    }

    fn step_finished(&self, name: &str, seconds: f64, reused: bool) {
        self.say(|| Lines.step_finished(name, seconds, reused));
    }

    fn line(&self, text: &str) {
        self.say(|| Lines.line(text));
    }
}

impl Drop for StudyBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
