//! The study report: sections of paragraphs, tables and pictures, written as Markdown and HTML.

use std::fmt::Write as _;
use std::path::Path;

use crate::atomic_file::write_atomic;

/// One piece of a section.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A paragraph of plain text (Markdown inline syntax is not interpreted in HTML).
    Para(String),
    /// A table with a header row.
    Table {
        headers: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// A picture beside the report (relative path) with its caption.
    Image { path: String, caption: String },
    /// A link to a file beside the report (JSON, GIF, SVG...).
    Link { path: String, text: String },
}

/// A titled section.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// Content in order.
    pub blocks: Vec<Block>,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Title at the top.
    pub title: String,
    /// Sections in order.
    pub sections: Vec<Section>,
}

impl Section {
    /// An empty section.
    pub fn new(title: &str) -> Self {
        Self {
            title: title.into(),
            blocks: Vec::new(),
        }
    }
    /// Adds a paragraph.
    pub fn para(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Para(text.into()));
        self
    }
    /// Adds a table.
    pub fn table(&mut self, headers: &[&str], rows: Vec<Vec<String>>) -> &mut Self {
        self.blocks.push(Block::Table {
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows,
        });
        self
    }
    /// Adds a picture.
    pub fn image(&mut self, path: impl Into<String>, caption: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Image {
            path: path.into(),
            caption: caption.into(),
        });
        self
    }
    /// Adds a link.
    pub fn link(&mut self, path: impl Into<String>, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Link {
            path: path.into(),
            text: text.into(),
        });
        self
    }
}

impl Report {
    /// Markdown text.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("# {}\n\n", self.title);
        for sec in &self.sections {
            let _ = writeln!(s, "## {}\n", sec.title);
            for b in &sec.blocks {
                match b {
                    Block::Para(t) => {
                        let _ = writeln!(s, "{t}\n");
                    }
                    Block::Table { headers, rows } => {
                        let _ = writeln!(s, "| {} |", headers.join(" | "));
                        let _ = writeln!(
                            s,
                            "|{}|",
                            headers.iter().map(|_| "---").collect::<Vec<_>>().join("|")
                        );
                        for r in rows {
                            let _ = writeln!(
                                s,
                                "| {} |",
                                r.iter()
                                    .map(|c| c.replace('|', "\\|"))
                                    .collect::<Vec<_>>()
                                    .join(" | ")
                            );
                        }
                        s.push('\n');
                    }
                    Block::Image { path, caption } => {
                        let _ = writeln!(s, "![{caption}]({path})\n\n*{caption}*\n");
                    }
                    Block::Link { path, text } => {
                        let _ = writeln!(s, "[{text}]({path})\n");
                    }
                }
            }
        }
        s
    }

    /// A self-contained HTML page (pictures and files are linked relatively, beside it).
    pub fn to_html(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:3px 8px;text-align:left}}figure{{margin:1em 0}}img{{max-width:100%;image-rendering:pixelated}}figcaption{{font-style:italic}}</style></head><body>\n<h1>{}</h1>\n",
            esc(&self.title),
            esc(&self.title)
        );
        for sec in &self.sections {
            let _ = writeln!(s, "<h2>{}</h2>", esc(&sec.title));
            for b in &sec.blocks {
                match b {
                    Block::Para(t) => {
                        let _ = writeln!(s, "<p>{}</p>", esc(t));
                    }
                    Block::Table { headers, rows } => {
                        s.push_str("<table><tr>");
                        for h in headers {
                            let _ = write!(s, "<th>{}</th>", esc(h));
                        }
                        s.push_str("</tr>\n");
                        for r in rows {
                            s.push_str("<tr>");
                            for c in r {
                                let _ = write!(s, "<td>{}</td>", esc(c));
                            }
                            s.push_str("</tr>\n");
                        }
                        s.push_str("</table>\n");
                    }
                    Block::Image { path, caption } => {
                        let _ = writeln!(s, "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>", esc(path), esc(caption), esc(caption));
                    }
                    Block::Link { path, text } => {
                        let _ = writeln!(s, "<p><a href=\"{}\">{}</a></p>", esc(path), esc(text));
                    }
                }
            }
        }
        s.push_str("</body></html>\n");
        s
    }

    /// Writes `report.md` and `report.html` into `dir`, atomically.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        write_atomic(&dir.join("report.md"), self.to_markdown().as_bytes())?;
        write_atomic(&dir.join("report.html"), self.to_html().as_bytes())
    }

    /// Every relative path the report links to (pictures and files).
    pub fn linked_paths(&self) -> Vec<String> {
        self.sections
            .iter()
            .flat_map(|s| s.blocks.iter())
            .filter_map(|b| match b {
                Block::Image { path, .. } | Block::Link { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_hold_every_block() {
        let mut sec = Section::new("Results");
        sec.para("a < b")
            .table(&["what", "value"], vec![vec!["acc".into(), "91 %".into()]])
            .image("a.png", "cap")
            .link("s.json", "summary");
        let r = Report {
            title: "T".into(),
            sections: vec![sec],
        };
        let md = r.to_markdown();
        assert!(
            md.contains("| acc | 91 % |")
                && md.contains("![cap](a.png)")
                && md.contains("[summary](s.json)")
        );
        let html = r.to_html();
        assert!(
            html.contains("a &lt; b")
                && html.contains("<img src=\"a.png\"")
                && html.contains("<a href=\"s.json\">")
        );
        assert_eq!(
            r.linked_paths(),
            vec!["a.png".to_string(), "s.json".to_string()]
        );
    }
}
