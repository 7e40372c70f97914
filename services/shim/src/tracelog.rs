//! The shim's own log: a minimal `tracing` subscriber writing text lines to
//! stderr (which the shim points at `STATE/shim.log`), in the shape of
//! tracing-subscriber's default format:
//!
//! `2026-11-27T18:00:00.123456Z  INFO rdock-shim{container=c1}: container exited code=0`
//!
//! It exists because a shim runs per container and must stay small: the full
//! registry, `EnvFilter` and OTLP layers of `rdock_common::telemetry` cost
//! several hundred KiB resident in every shim. When OTLP export is configured
//! (`OTEL_EXPORTER_OTLP_*`), the shim uses `rdock_common::telemetry` instead,
//! and its spans join the caller's trace.
//!
//! Limits: `Span::current()` is not supported (`tracing` does not export the
//! type it needs); spawned tasks are instrumented with explicit spans.
//!
//! Level: `RDOCK_LOG` as a plain level (`debug`) or `target=level` list, of
//! which the most verbose level for `rdock*` (or no target) counts; other
//! crates log warnings and errors only. Default `info`.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Installs the subscriber as the global default (once).
pub fn init() {
    let level = level_from(std::env::var("RDOCK_LOG").ok().as_deref());
    let _ = tracing::subscriber::set_global_default(TextLog::new(level));
}

/// Whether `OTEL_*` asks for trace export (as `rdock_common::telemetry`
/// decides it).
pub fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
        && std::env::var("OTEL_SDK_DISABLED").as_deref() != Ok("true")
}

fn parse_level(s: &str) -> Option<Level> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" => Some(Level::ERROR),
        "warn" => Some(Level::WARN),
        "info" => Some(Level::INFO),
        "debug" => Some(Level::DEBUG),
        "trace" => Some(Level::TRACE),
        _ => None,
    }
}

/// The level for the shim's own events from an `RDOCK_LOG` value.
pub fn level_from(spec: Option<&str>) -> Level {
    let mut best: Option<Level> = None;
    for part in spec.unwrap_or("").split(',') {
        let level = match part.split_once('=') {
            None => parse_level(part),
            Some((target, l)) if target.trim().starts_with("rdock") => parse_level(l),
            Some(_) => None,
        };
        // In `tracing`, more verbose levels compare greater.
        if let Some(l) = level {
            best = Some(best.map_or(l, |b| b.max(l)));
        }
    }
    best.unwrap_or(Level::INFO)
}

struct SpanData {
    name: &'static str,
    fields: String,
    parent: Option<u64>,
    refs: usize,
}

#[derive(Default)]
struct Spans {
    map: HashMap<u64, SpanData>,
    /// Entered spans, innermost last. The shim runs one thread; tasks enter
    /// and leave their spans around each poll, so one stack is exact.
    stack: Vec<u64>,
}

/// Text lines to stderr.
pub struct TextLog {
    level: Level,
    next: AtomicU64,
    spans: Mutex<Spans>,
}

impl TextLog {
    pub fn new(level: Level) -> TextLog {
        TextLog {
            level,
            next: AtomicU64::new(1),
            spans: Mutex::new(Spans::default()),
        }
    }

    fn spans(&self) -> std::sync::MutexGuard<'_, Spans> {
        self.spans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `outer{a=1}:inner{b=2}` for the span `id` and its ancestors.
    fn scope(spans: &Spans, mut id: Option<u64>, out: &mut String) {
        let mut chain = Vec::new();
        while let Some(i) = id {
            let Some(s) = spans.map.get(&i) else { break };
            chain.push(s);
            id = s.parent;
            if chain.len() > 32 {
                break;
            }
        }
        for s in chain.iter().rev() {
            out.push_str(s.name);
            if !s.fields.is_empty() {
                let _ = write!(out, "{{{}}}", s.fields.trim_start());
            }
            out.push(':');
        }
        if !chain.is_empty() {
            out.push(' ');
        }
    }
}

/// Collects fields as ` k=v`, the message apart.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else if value.is_empty() || value.contains([' ', '"', '=']) {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

impl Subscriber for TextLog {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        let own = m.target().starts_with("rdock");
        *m.level() <= if own { self.level } else { Level::WARN }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(
            self.level.max(Level::WARN),
        ))
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut f = Fields::default();
        attrs.record(&mut f);
        let mut spans = self.spans();
        let parent = if attrs.is_root() {
            None
        } else if let Some(p) = attrs.parent() {
            Some(p.into_u64())
        } else {
            spans.stack.last().copied()
        };
        if let Some(p) = parent.and_then(|p| spans.map.get_mut(&p)) {
            p.refs += 1; // a child keeps its parent's fields alive
        }
        spans.map.insert(
            id,
            SpanData {
                name: attrs.metadata().name(),
                fields: f.rest,
                parent,
                refs: 1,
            },
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut f = Fields::default();
        values.record(&mut f);
        if let Some(s) = self.spans().map.get_mut(&span.into_u64()) {
            s.fields.push_str(&f.rest);
        }
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let m = event.metadata();
        let mut line = String::with_capacity(128);
        let _ = write!(
            line,
            "{} {:>5} ",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            m.level()
        );
        {
            let spans = self.spans();
            let parent = if event.is_root() {
                None
            } else if let Some(p) = event.parent() {
                Some(p.into_u64())
            } else {
                spans.stack.last().copied()
            };
            Self::scope(&spans, parent, &mut line);
        }
        if !m.target().starts_with("rdock") {
            let _ = write!(line, "{}: ", m.target());
        }
        line.push_str(&f.message);
        line.push_str(&f.rest);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn enter(&self, span: &Id) {
        self.spans().stack.push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut spans = self.spans();
        let id = span.into_u64();
        if let Some(i) = spans.stack.iter().rposition(|s| *s == id) {
            spans.stack.remove(i);
        }
    }

    fn clone_span(&self, span: &Id) -> Id {
        if let Some(s) = self.spans().map.get_mut(&span.into_u64()) {
            s.refs += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let mut spans = self.spans();
        let mut id = Some(span.into_u64());
        let mut closed_first = false;
        let mut first = true;
        // Dropping a span releases its hold on its parent, and so on up.
        while let Some(i) = id {
            let Some(s) = spans.map.get_mut(&i) else {
                break;
            };
            s.refs = s.refs.saturating_sub(1);
            if s.refs > 0 {
                break;
            }
            id = s.parent;
            spans.map.remove(&i);
            if first {
                closed_first = true;
            }
            first = false;
        }
        closed_first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level_from(None), Level::INFO);
        assert_eq!(level_from(Some("debug")), Level::DEBUG);
        assert_eq!(level_from(Some("h2=trace,warn")), Level::WARN);
        assert_eq!(level_from(Some("rdock_shim=trace,info")), Level::TRACE);
        assert_eq!(level_from(Some("nonsense")), Level::INFO);
    }

    #[test]
    fn spans_are_freed_with_their_children() {
        let log = TextLog::new(Level::INFO);
        tracing::subscriber::with_default(log, || {
            let outer = tracing::info_span!("outer", a = 1);
            {
                let _g = outer.enter();
                let inner = tracing::info_span!("inner", b = "x y");
                let _h = inner.enter();
                tracing::info!(k = 2, "hello");
            }
            drop(outer);
            tracing::dispatcher::get_default(|d| {
                let log = d.downcast_ref::<TextLog>().unwrap();
                let spans = log.spans();
                assert!(spans.map.is_empty(), "spans leaked");
                assert!(spans.stack.is_empty());
            });
        });
    }

    #[test]
    fn scope_shape() {
        let mut spans = Spans::default();
        spans.map.insert(
            1,
            SpanData {
                name: "rdock-shim",
                fields: " container=c1".into(),
                parent: None,
                refs: 1,
            },
        );
        spans.map.insert(
            2,
            SpanData {
                name: "shim",
                fields: " rpc=Start".into(),
                parent: Some(1),
                refs: 1,
            },
        );
        let mut out = String::new();
        TextLog::scope(&spans, Some(2), &mut out);
        assert_eq!(out, "rdock-shim{container=c1}:shim{rpc=Start}: ");
        let mut none = String::new();
        TextLog::scope(&spans, None, &mut none);
        assert_eq!(none, "");
    }
}
