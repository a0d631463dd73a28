//! The type names of schema files and their Arrow types.

use arrow::datatypes::{DataType, Field, Fields};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("type `{text}`: {reason}")]
pub struct TypeError {
    pub text: String,
    pub reason: String,
}

/// Parses `utf8`, `int32`, `int64`, `date32`, `boolean`, `decimal128(p,s)`, `list<T>` and
/// `struct<name:T,...>`.
pub fn parse_type(text: &str) -> Result<DataType, TypeError> {
    let err = |reason: &str| TypeError { text: text.to_string(), reason: reason.to_string() };
    let t = text.trim();
    Ok(match t {
        "utf8" => DataType::Utf8,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "date32" => DataType::Date32,
        "boolean" => DataType::Boolean,
        _ => {
            if let Some(inner) = t.strip_prefix("decimal128(").and_then(|r| r.strip_suffix(')')) {
                let (p, s) = inner.split_once(',').ok_or_else(|| err("expected decimal128(precision,scale)"))?;
                let p: u8 = p.trim().parse().map_err(|_| err("bad precision"))?;
                let s: i8 = s.trim().parse().map_err(|_| err("bad scale"))?;
                if p == 0 || p > 38 || s < 0 || s as u8 > p {
                    return Err(err("precision must be 1–38 and scale 0–precision"));
                }
                DataType::Decimal128(p, s)
            } else if let Some(inner) = t.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
                DataType::List(Arc::new(Field::new("item", parse_type(inner)?, true)))
            } else if let Some(inner) = t.strip_prefix("struct<").and_then(|r| r.strip_suffix('>')) {
                let mut fields = Vec::new();
                for part in split_top_level(inner) {
                    let (name, ty) = part.split_once(':').ok_or_else(|| err("struct fields are name:type"))?;
                    fields.push(Field::new(name.trim(), parse_type(ty)?, true));
                }
                DataType::Struct(Fields::from(fields))
            } else {
                return Err(err("unknown type"));
            }
        }
    })
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!(parse_type("decimal128(6,1)").unwrap(), DataType::Decimal128(6, 1));
        let t = parse_type("list<struct<no:int32,value:utf8>>").unwrap();
        match t {
            DataType::List(f) => match f.data_type() {
                DataType::Struct(fs) => assert_eq!(fs.len(), 2),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert!(parse_type("float").is_err());
        assert!(parse_type("decimal128(0,1)").is_err());
    }
}
