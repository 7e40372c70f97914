//! Go templates for `--format`/`-f`, on top of `gtmpl`.
//!
//! Two things make gtmpl print like Go's `text/template` here:
//! - JSON objects become gtmpl maps, so a missing key prints `<no value>`;
//! - gtmpl prints lists and maps with Rust's debug form, so every printing
//!   action gets a final `| rdockprint` that formats the value as Go's `%v`
//!   does (`[sh -c]`, `map[a:b]`, `<nil>`).
//!
//! Docker's template functions `json`, `join`, `split`, `upper`, `lower` and
//! `title` are added to gtmpl's built-ins.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use gtmpl::{Context, FuncError, Template, Value};

const PRINT_FN: &str = "rdockprint";

/// A parsed template, ready to render many objects.
pub struct GoTemplate {
    tmpl: Template,
}

impl GoTemplate {
    pub fn parse(text: &str) -> Result<Self> {
        let mut tmpl = Template::default();
        tmpl.add_func(PRINT_FN, go_print);
        tmpl.add_func("json", json);
        tmpl.add_func("join", join);
        tmpl.add_func("split", split);
        tmpl.add_func("upper", upper);
        tmpl.add_func("lower", lower);
        tmpl.add_func("title", title);
        tmpl.parse(add_print_filter(text))
            .map_err(|e| anyhow!("template parsing error: {e}"))?;
        Ok(GoTemplate { tmpl })
    }

    /// Renders one object.
    pub fn render(&self, data: &serde_json::Value) -> Result<String> {
        self.tmpl
            .render(&Context::from(to_gtmpl(data)))
            .map_err(|e| anyhow!("template: {e}"))
    }
}

/// JSON → gtmpl value; objects become maps (missing keys print `<no value>`).
pub fn to_gtmpl(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), to_gtmpl(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// gtmpl value → JSON (maps come out with sorted keys, as Go's do).
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into()
            } else if let Some(i) = n.as_i64() {
                i.into()
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(m) | Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// Go's `%v`.
fn go_format(v: &Value, out: &mut String) {
    match v {
        Value::NoValue => out.push_str("<no value>"),
        Value::Nil | Value::Function(_) => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else {
                out.push_str(&n.as_f64().unwrap_or(0.0).to_string());
            }
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_format(item, out);
            }
            out.push(']');
        }
        Value::Object(m) | Value::Map(m) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                if let Some(v) = m.get(k) {
                    go_format(v, out);
                }
            }
            out.push(']');
        }
    }
}

fn one_arg<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [v] => Ok(v),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

fn str_arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => {
            let mut s = String::new();
            go_format(other, &mut s);
            s
        }
    }
}

fn go_print(args: &[Value]) -> Result<Value, FuncError> {
    let mut s = String::new();
    go_format(one_arg(PRINT_FN, args)?, &mut s);
    Ok(Value::String(s))
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    let v = to_json(one_arg("json", args)?);
    serde_json::to_string(&v)
        .map(Value::String)
        .map_err(|e| FuncError::Generic(e.to_string()))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let [list, sep] = args else {
        return Err(FuncError::ExactlyXArgs("join".into(), 2));
    };
    let items: Vec<String> = match list {
        Value::Array(a) => a.iter().map(str_arg).collect(),
        Value::Nil | Value::NoValue => Vec::new(),
        other => vec![str_arg(other)],
    };
    Ok(Value::String(items.join(&str_arg(sep))))
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    let [s, sep] = args else {
        return Err(FuncError::ExactlyXArgs("split".into(), 2));
    };
    let (s, sep) = (str_arg(s), str_arg(sep));
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep.as_str())
            .map(|p| Value::String(p.into()))
            .collect()
    };
    Ok(Value::Array(parts))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        str_arg(one_arg("upper", args)?).to_uppercase(),
    ))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        str_arg(one_arg("lower", args)?).to_lowercase(),
    ))
}

fn title(args: &[Value]) -> Result<Value, FuncError> {
    let s = str_arg(one_arg("title", args)?);
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    Ok(Value::String(out))
}

/// Appends `| rdockprint` to every action that prints its pipeline's value
/// (not to control actions, declarations or comments). Anything it cannot
/// follow is left as written, for gtmpl to report.
fn add_print_filter(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let action = &rest[open..];
        let Some(close) = action_end(action) else {
            out.push_str(action);
            return out;
        };
        let (whole, after) = action.split_at(close + 2);
        out.push_str(&rewrite_action(whole));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The index of the `}}` closing the action `s` starts with, skipping
/// quoted strings, raw strings, rune literals and comments.
fn action_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 2;
    // A comment runs to "*/" followed by the closing delimiter.
    let body_start = if s[2..].starts_with('-') { 3 } else { 2 };
    if s[body_start..].trim_start().starts_with("/*") {
        let end = s.find("*/")?;
        return s[end..].find("}}").map(|j| end + j);
    }
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                let q = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn rewrite_action(whole: &str) -> String {
    // whole = "{{" [ "- " ] body [ " -" ] "}}"
    let inner = &whole[2..whole.len() - 2];
    let left_trim = inner.starts_with('-') && inner[1..].starts_with(char::is_whitespace);
    let right_trim = inner.ends_with('-')
        && inner[..inner.len() - 1].ends_with(char::is_whitespace)
        && inner.len() > 1;
    let body_from = if left_trim { 1 } else { 0 };
    let body_to = if right_trim {
        inner.len() - 1
    } else {
        inner.len()
    };
    if body_from >= body_to {
        return whole.to_string();
    }
    let body = &inner[body_from..body_to];
    if !prints(body.trim()) {
        return whole.to_string();
    }
    let trimmed_end = body.trim_end().len();
    format!(
        "{{{{{}{} | {PRINT_FN}{}{}}}}}",
        &inner[..body_from],
        &body[..trimmed_end],
        &body[trimmed_end..],
        &inner[body_to..],
    )
}

/// Whether an action's body is a pipeline whose value is printed.
fn prints(body: &str) -> bool {
    if body.is_empty() || body.starts_with("/*") {
        return false;
    }
    let word: String = body
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    const KEYWORDS: [&str; 10] = [
        "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    ];
    if KEYWORDS.contains(&word.as_str()) {
        return false;
    }
    if let Some(var) = body.strip_prefix('$') {
        let after = var
            .trim_start_matches(|c: char| c.is_alphanumeric() || c == '_')
            .trim_start();
        if after.starts_with(":=")
            || after.starts_with(',')
            || (after.starts_with('=') && !after.starts_with("=="))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &serde_json::Value) -> String {
        GoTemplate::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn filter_only_on_printing_actions() {
        assert_eq!(add_print_filter("{{.Id}}"), "{{.Id | rdockprint}}");
        assert_eq!(
            add_print_filter("a {{ .Id }} b"),
            "a {{ .Id | rdockprint }} b"
        );
        assert_eq!(add_print_filter("{{- .Id -}}"), "{{- .Id | rdockprint -}}");
        assert_eq!(add_print_filter("{{if .X}}y{{end}}"), "{{if .X}}y{{end}}");
        assert_eq!(
            add_print_filter("{{$x := .A}}{{$x}}"),
            "{{$x := .A}}{{$x | rdockprint}}"
        );
        assert_eq!(add_print_filter("{{/* c }} */}}"), "{{/* c }} */}}");
        assert_eq!(
            add_print_filter(r#"{{printf "%s}}" .A}}"#),
            r#"{{printf "%s}}" .A | rdockprint}}"#
        );
        assert_eq!(add_print_filter("{{.A"), "{{.A");
    }

    #[test]
    fn renders_inspect_objects_like_go() {
        let obj = json!({
            "Id": "sha256:abc",
            "RepoTags": ["busybox:latest", "bb:1"],
            "Size": 4261550,
            "Config": {
                "Cmd": ["sh", "-c", "echo hi"],
                "Env": ["PATH=/bin"],
                "Labels": {"b": "2", "a": "1"},
                "Entrypoint": null
            },
            "RootFS": {"Type": "layers", "Layers": ["sha256:1"]}
        });
        assert_eq!(render("{{.Id}}", &obj), "sha256:abc");
        assert_eq!(render("{{.Config.Cmd}}", &obj), "[sh -c echo hi]");
        assert_eq!(render("{{.Size}}", &obj), "4261550");
        assert_eq!(render("{{.Config.Labels}}", &obj), "map[a:1 b:2]");
        assert_eq!(render("{{.Config.Entrypoint}}", &obj), "<nil>");
        assert_eq!(render("{{.Config.WorkingDir}}", &obj), "<no value>");
        assert_eq!(
            render("{{json .Config}}", &obj),
            r#"{"Cmd":["sh","-c","echo hi"],"Entrypoint":null,"Env":["PATH=/bin"],"Labels":{"a":"1","b":"2"}}"#
        );
        assert_eq!(render("{{json .RootFS.Layers}}", &obj), r#"["sha256:1"]"#);
        assert_eq!(
            render("{{range .RepoTags}}{{.}};{{end}}", &obj),
            "busybox:latest;bb:1;"
        );
        assert_eq!(
            render("{{join .RepoTags \",\"}}", &obj),
            "busybox:latest,bb:1"
        );
        assert_eq!(render("{{index .RepoTags 1}}", &obj), "bb:1");
        assert_eq!(
            render("{{if .Config.Cmd}}yes{{else}}no{{end}}", &obj),
            "yes"
        );
        assert_eq!(render("{{upper .RootFS.Type}}", &obj), "LAYERS");
        assert_eq!(render("{{len .RepoTags}}", &obj), "2");
        assert_eq!(render("{{$t := .RootFS.Type}}{{$t}}", &obj), "layers");
        assert_eq!(
            render("{{printf \"%s-%d\" .Id .Size}}", &obj),
            "sha256:abc-4261550"
        );
    }

    #[test]
    fn template_errors_are_errors() {
        assert!(GoTemplate::parse("{{.Id").is_err());
        assert!(GoTemplate::parse("{{nosuchfunc .Id}}").is_err());
        let t = GoTemplate::parse("{{.Id.Foo}}").unwrap();
        assert!(t.render(&json!({"Id": "x"})).is_err());
    }
}
