//! `saliency study`: runs the whole study and writes a report with its pictures.

pub mod report;
pub mod figures;
pub mod steps;
pub mod training;
