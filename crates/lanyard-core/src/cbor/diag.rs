//! CBOR diagnostic notation (RFC 8949 §8, with the EDN conventions of RFC 8610 App. G):
//! `h'..'` byte strings, `<< .. >>` embedded CBOR, `simple(n)`, `# comments` to the end of
//! the line.

use std::fmt::Write as _;

use super::value::Value;

/// For a byte string that holds encoded CBOR, the decoded item.
pub type EmbeddedFn<'a> = &'a dyn Fn(&[u8]) -> Option<Value>;
/// A comment for a value.
pub type CommentFn<'a> = &'a dyn Fn(&Value) -> Option<String>;

/// How [`to_diagnostic_pretty`] shows byte strings and which comments it adds.
#[derive(Default, Clone, Copy)]
pub struct DiagOptions<'a> {
    /// Byte strings for which this returns an item are printed as embedded CBOR,
    /// `<< item >>`, instead of as hex.
    pub embedded: Option<EmbeddedFn<'a>>,
    /// A comment to print after a value (as `# comment`, to the end of the line).
    pub comment: Option<CommentFn<'a>>,
}

/// One-line diagnostic notation of `value`.
pub fn to_diagnostic(value: &Value) -> String {
    let mut out = String::new();
    write_compact(&mut out, value);
    out
}

/// Indented diagnostic notation of `value`, one map entry or array element per line.
pub fn to_diagnostic_pretty(value: &Value, options: &DiagOptions<'_>) -> String {
    let mut out = String::new();
    write_pretty(&mut out, value, 0, options);
    out
}

fn write_compact(out: &mut String, value: &Value) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_compact(out, item);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_compact(out, k);
                out.push_str(": ");
                write_compact(out, v);
            }
            out.push('}');
        }
        Value::Tag(tag, content) => {
            let _ = write!(out, "{tag}(");
            write_compact(out, content);
            out.push(')');
        }
        scalar => write_scalar(out, scalar),
    }
}

fn write_scalar(out: &mut String, value: &Value) {
    match value {
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Bytes(b) => {
            out.push_str("h'");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
            out.push('\'');
        }
        Value::Text(t) => write_text(out, t),
        Value::Simple(23) => out.push_str("undefined"),
        Value::Simple(v) => {
            let _ = write!(out, "simple({v})");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
        Value::Float(f) if f.is_nan() => out.push_str("NaN"),
        Value::Float(f) if f.is_infinite() => out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" }),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e16 => {
            let _ = write!(out, "{f:.1}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        container => write_compact(out, container),
    }
}

fn write_text(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn comment(out: &mut String, value: &Value, options: &DiagOptions<'_>) {
    if let Some(text) = options.comment.and_then(|f| f(value)) {
        // An end-of-line comment (EDN `#`), so the text may contain `/`.
        let _ = write!(out, "  # {}", text.replace('\n', " "));
    }
}

/// The elements of an array (no key) or the entries of a map, one per line.
fn write_block(
    out: &mut String,
    (open, close): (char, char),
    entries: &[(Option<&Value>, &Value)],
    level: usize,
    options: &DiagOptions<'_>,
) {
    out.push(open);
    for (i, (key, value)) in entries.iter().enumerate() {
        out.push('\n');
        indent(out, level + 1);
        if let Some(key) = key {
            write_compact(out, key);
            out.push_str(": ");
        }
        write_pretty(out, value, level + 1, options);
        if i + 1 < entries.len() {
            out.push(',');
        }
        comment(out, value, options);
    }
    out.push('\n');
    indent(out, level);
    out.push(close);
}

fn write_pretty(out: &mut String, value: &Value, level: usize, options: &DiagOptions<'_>) {
    match value {
        Value::Bytes(b) => {
            if let Some(inner) = options.embedded.and_then(|f| f(b)) {
                out.push_str("<< ");
                write_pretty(out, &inner, level, options);
                out.push_str(" >>");
            } else {
                write_scalar(out, value);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let entries: Vec<(Option<&Value>, &Value)> = items.iter().map(|v| (None, v)).collect();
            write_block(out, ('[', ']'), &entries, level, options);
        }
        Value::Map(entries) if !entries.is_empty() => {
            let entries: Vec<(Option<&Value>, &Value)> = entries.iter().map(|(k, v)| (Some(k), v)).collect();
            write_block(out, ('{', '}'), &entries, level, options);
        }
        Value::Tag(tag, content) => {
            let _ = write!(out, "{tag}(");
            write_pretty(out, content, level, options);
            out.push(')');
        }
        other => write_compact(out, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact() {
        let v = Value::map([
            (Value::int(1), Value::text("a\"b")),
            (Value::Simple(59), Value::Array(vec![Value::bytes(vec![0xab, 0x01])])),
            (Value::text("t"), Value::Tag(60, Box::new(Value::Float(1.5)))),
            (
                Value::int(-2),
                Value::Array(vec![Value::Bool(true), Value::Null, Value::Float(2.0)]),
            ),
        ]);
        assert_eq!(
            to_diagnostic(&v),
            r#"{1: "a\"b", simple(59): [h'ab01'], "t": 60(1.5), -2: [true, null, 2.0]}"#
        );
    }

    #[test]
    fn pretty_with_embedded_items_and_comments() {
        let inner = Value::Array(vec![Value::int(1)]);
        let v = Value::Array(vec![Value::bytes(inner.to_vec()), Value::bytes(vec![0xff])]);
        let embedded = |b: &[u8]| super::super::decode(b).ok();
        let comment = |v: &Value| matches!(v, Value::Bytes(b) if b == &[0xff]).then(|| "not CBOR".to_owned());
        let options = DiagOptions {
            embedded: Some(&embedded),
            comment: Some(&comment),
        };
        assert_eq!(
            to_diagnostic_pretty(&v, &options),
            "[\n  << [\n    1\n  ] >>,\n  h'ff'  # not CBOR\n]"
        );
    }
}
