//! Per-layer progress of a pull or push: one bar per layer when stdout is a
//! terminal, else one plain line per layer per phase change, like Docker's
//! `a1b2c3d4e5f6: Downloading 1.2MB/3.4MB`.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rdock_proto::image::v1::LayerProgress;

use crate::format::{human_size, short_id};

/// Which transfer the events describe (the words differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pull,
    Push,
}

/// Docker's word for a layer phase.
pub fn phase_label(kind: Kind, phase: &str) -> String {
    let known = match (kind, phase) {
        (_, "waiting") => "Waiting",
        (_, "preparing") => "Preparing",
        (Kind::Pull, "downloading") => "Downloading",
        (Kind::Pull, "verifying") => "Verifying Checksum",
        (Kind::Pull, "downloaded") => "Download complete",
        (Kind::Pull, "extracting") => "Extracting",
        (Kind::Pull, "complete") => "Pull complete",
        (Kind::Pull, "exists") => "Already exists",
        (Kind::Push, "uploading" | "pushing" | "downloading") => "Pushing",
        (Kind::Push, "verifying") => "Verifying",
        (Kind::Push, "complete" | "pushed") => "Pushed",
        (Kind::Push, "exists") => "Layer already exists",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let mut chars = phase.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Working".to_string(),
    }
}

/// Phases that move bytes and so show "current/total".
fn is_transfer(phase: &str) -> bool {
    matches!(
        phase,
        "downloading" | "extracting" | "uploading" | "pushing"
    )
}

/// Phases after which nothing more happens to the layer.
fn is_final(phase: &str) -> bool {
    matches!(phase, "complete" | "exists" | "pushed")
}

/// The plain line for one event: `<short id>: <Phase>[ <cur>/<total>]`.
pub fn plain_line(kind: Kind, ev: &LayerProgress) -> String {
    let mut line = format!("{}: {}", short_id(&ev.digest), phase_label(kind, &ev.phase));
    if is_transfer(&ev.phase) && ev.total > 0 {
        line.push_str(&format!(
            " {}/{}",
            human_size(ev.current),
            human_size(ev.total)
        ));
    }
    line
}

struct Bars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    bar_style: ProgressStyle,
    text_style: ProgressStyle,
}

/// Where progress goes: stdout for `pull`, stderr for the pull `run` and
/// `create` do (their stdout is the container's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
}

impl Output {
    fn is_terminal(self) -> bool {
        match self {
            Output::Stdout => io::stdout().is_terminal(),
            Output::Stderr => io::stderr().is_terminal(),
        }
    }

    fn draw_target(self) -> ProgressDrawTarget {
        match self {
            Output::Stdout => ProgressDrawTarget::stdout(),
            Output::Stderr => ProgressDrawTarget::stderr(),
        }
    }

    /// Writes one line and flushes.
    pub fn line(self, text: &str) -> io::Result<()> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                writeln!(out, "{text}")?;
                out.flush()
            }
            Output::Stderr => {
                let mut out = io::stderr().lock();
                writeln!(out, "{text}")?;
                out.flush()
            }
        }
    }
}

/// Shows layer events as they come.
pub struct Progress {
    kind: Kind,
    output: Output,
    bars: Option<Bars>,
    phases: HashMap<String, String>,
}

impl Progress {
    /// Bars when stdout is a terminal, plain lines otherwise.
    pub fn new(kind: Kind) -> Self {
        Self::to(kind, Output::Stdout)
    }

    /// Bars when `output` is a terminal, plain lines otherwise.
    pub fn to(kind: Kind, output: Output) -> Self {
        let bars = output.is_terminal().then(|| Bars {
            multi: MultiProgress::with_draw_target(output.draw_target()),
            bars: HashMap::new(),
            bar_style: ProgressStyle::with_template(
                "{prefix}: {msg:<12} [{bar:40}] {decimal_bytes}/{decimal_total_bytes}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
            text_style: ProgressStyle::with_template("{prefix}: {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        });
        Progress {
            kind,
            output,
            bars,
            phases: HashMap::new(),
        }
    }

    pub fn layer(&mut self, ev: &LayerProgress) -> io::Result<()> {
        let changed = self.phases.get(&ev.digest) != Some(&ev.phase);
        if changed {
            self.phases.insert(ev.digest.clone(), ev.phase.clone());
        }
        let Some(b) = self.bars.as_mut() else {
            if changed {
                self.output.line(&plain_line(self.kind, ev))?;
            }
            return Ok(());
        };
        let bar = b
            .bars
            .entry(ev.digest.clone())
            .or_insert_with(|| {
                b.multi.add(
                    ProgressBar::new(0)
                        .with_style(b.text_style.clone())
                        .with_prefix(short_id(&ev.digest)),
                )
            })
            .clone();
        let label = phase_label(self.kind, &ev.phase);
        if is_transfer(&ev.phase) && ev.total > 0 {
            if changed {
                bar.set_style(b.bar_style.clone());
                bar.set_message(label);
            }
            bar.set_length(ev.total);
            bar.set_position(ev.current.min(ev.total));
        } else if changed {
            bar.set_style(b.text_style.clone());
            if is_final(&ev.phase) {
                bar.finish_with_message(label);
            } else {
                bar.set_message(label);
            }
        }
        Ok(())
    }

    /// A status line, above the bars when there are bars.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        match &self.bars {
            Some(b) => b.multi.println(text),
            None => self.output.line(text),
        }
    }

    /// Leaves every bar as it last was.
    pub fn finish(&mut self) {
        if let Some(b) = &self.bars {
            for bar in b.bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(phase: &str, current: u64, total: u64) -> LayerProgress {
        LayerProgress {
            digest: "sha256:a1b2c3d4e5f6a7b8c9d0".into(),
            current,
            total,
            phase: phase.into(),
        }
    }

    #[test]
    fn plain_lines_like_docker() {
        assert_eq!(
            plain_line(Kind::Pull, &ev("downloading", 1_200_000, 3_400_000)),
            "a1b2c3d4e5f6: Downloading 1.2MB/3.4MB"
        );
        assert_eq!(
            plain_line(Kind::Pull, &ev("waiting", 0, 0)),
            "a1b2c3d4e5f6: Waiting"
        );
        assert_eq!(
            plain_line(Kind::Pull, &ev("verifying", 1, 2)),
            "a1b2c3d4e5f6: Verifying Checksum"
        );
        assert_eq!(
            plain_line(Kind::Pull, &ev("complete", 2, 2)),
            "a1b2c3d4e5f6: Pull complete"
        );
        assert_eq!(
            plain_line(Kind::Pull, &ev("exists", 0, 0)),
            "a1b2c3d4e5f6: Already exists"
        );
        assert_eq!(
            plain_line(Kind::Push, &ev("complete", 2, 2)),
            "a1b2c3d4e5f6: Pushed"
        );
        assert_eq!(
            plain_line(Kind::Push, &ev("exists", 0, 0)),
            "a1b2c3d4e5f6: Layer already exists"
        );
        assert_eq!(
            plain_line(Kind::Push, &ev("mounted", 0, 0)),
            "a1b2c3d4e5f6: Mounted"
        );
    }
}
