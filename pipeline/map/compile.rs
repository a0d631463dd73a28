//! Turns a mapping file into a checked plan. Every mistake a mapping can hold — an unknown
//! record set, column, field or code table, a type that cannot fill its column, a key column left
//! unfilled — is a configuration error here, at start-up, before any data is read.

use super::codes::CodeTable;
use super::layout::*;
use crate::codec::wareki::DateStyle;
use crate::read::xml::{XmlFieldSource, XmlLimits, XmlList, XmlPlan, XmlValue};
use crate::schema::{RecordSetSchema, SchemaRegistry, Shape};
use arrow::datatypes::DataType;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{file}: {source}")]
    Toml { file: String, source: toml::de::Error },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

/// Where a value is in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    /// 0-based CSV field index.
    Field(usize),
    /// 0-based first byte and length.
    Bytes(usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pad {
    None,
    Space,
    Zenkaku,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Int,
    /// Decimal with this many digits after the point.
    Decimal(i8),
    Date(DateStyle),
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    /// 1-based number for messages (CSV field number or first byte).
    pub number: usize,
    pub loc: Loc,
    pub kind: FieldKind,
    pub pad: Pad,
    pub normalize_insurer: bool,
    pub code_table: Option<String>,
    pub ends_period: bool,
    /// XML: where the value is, for messages (`element <InsuredNo>`).
    pub place: Option<String>,
}

/// A repeated, numbered element of an XML record (`[[lists]]`).
#[derive(Debug, Clone)]
pub struct ListDef {
    pub name: String,
    pub label: String,
    pub element: String,
    /// Valid numbers, inclusive.
    pub numbers: (i64, i64),
}

/// A constant of a column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Utf8(String),
    Int(i64),
}

#[derive(Debug, Clone)]
pub enum Condition {
    Always,
    AllPresent(Vec<usize>),
    In { field: usize, values: Vec<String> },
}

#[derive(Debug, Clone)]
pub enum ColumnSource {
    /// Not filled by this layout: null.
    Null,
    Field {
        field: usize,
        nfkc: bool,
    },
    Const(Scalar),
    /// The field's code looked up in a table; a code without an entry gives null.
    Lookup {
        field: usize,
        values: Arc<HashMap<String, Scalar>>,
    },
    FirstMatch(Vec<(Condition, Scalar)>),
    /// The entries of a list of the layout, ordered by number.
    List(usize),
}

#[derive(Debug, Clone)]
pub struct OutputPlan {
    pub set: Arc<RecordSetSchema>,
    pub when_present: Vec<usize>,
    pub when_any_present: Vec<usize>,
    /// One source per content column of the set, in schema order.
    pub columns: Vec<ColumnSource>,
}

#[derive(Debug, Clone)]
pub struct EnvelopeRecord {
    pub kind: String,
    pub fields: Option<usize>,
    pub count: Option<Loc>,
    pub insurer: Option<Loc>,
    pub expect: Vec<(Loc, String)>,
    pub order: Vec<Loc>,
}

#[derive(Debug, Clone)]
pub struct Envelope {
    pub kind: Loc,
    pub data_kind: String,
    pub data_insurer: Option<usize>,
    pub header: Option<EnvelopeRecord>,
    pub trailer: Option<EnvelopeRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedTerminator {
    Crlf,
    None,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFormat {
    Csv { quoting: bool, fields: usize, header: Vec<String> },
    Fixed { record_len: usize, terminator: FixedTerminator },
    Xml { plan: XmlPlan, insurer_attribute: Option<String> },
}

/// A mapping ready to run.
#[derive(Debug, Clone)]
pub struct Layout {
    pub name: String,
    pub label: String,
    pub file: String,
    pub format: SourceFormat,
    pub encoding: EncodingName,
    pub mode: ModeName,
    pub primary_record_set: Arc<RecordSetSchema>,
    pub envelope: Option<Envelope>,
    pub fields: Vec<FieldDef>,
    pub lists: Vec<ListDef>,
    pub outputs: Vec<OutputPlan>,
    pub apply_order_field: Option<usize>,
}

impl Layout {
    pub fn record_sets(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.outputs.iter().map(|o| o.set.name.as_str()).collect();
        v.dedup();
        v
    }
}

pub fn compile(file: &str, text: &str, schemas: &SchemaRegistry, codes: &BTreeMap<String, CodeTable>) -> Result<Layout, MappingError> {
    let lf: LayoutFile = toml::from_str(text).map_err(|source| MappingError::Toml { file: file.to_string(), source })?;
    let bad = |reason: String| MappingError::Invalid { file: file.to_string(), reason };
    let mut format = match lf.format {
        FormatName::Csv => {
            let c = lf.csv.as_ref().ok_or_else(|| bad("format = \"csv\" needs a [csv] section".into()))?;
            if !c.header.is_empty() && c.header.len() != c.fields {
                return Err(bad(format!("[csv] header names {} columns, fields = {}", c.header.len(), c.fields)));
            }
            SourceFormat::Csv { quoting: c.quoting, fields: c.fields, header: c.header.clone() }
        }
        FormatName::Fixed => {
            let f = lf.fixed.as_ref().ok_or_else(|| bad("format = \"fixed\" needs a [fixed] section".into()))?;
            let terminator = match f.terminator.as_str() {
                "crlf" => FixedTerminator::Crlf,
                "none" => FixedTerminator::None,
                "auto" => FixedTerminator::Auto,
                other => return Err(bad(format!("[fixed] terminator `{other}` is not crlf, none or auto"))),
            };
            if f.record_len == 0 {
                return Err(bad("[fixed] record_len must be positive".into()));
            }
            SourceFormat::Fixed { record_len: f.record_len, terminator }
        }
        FormatName::Xml => {
            let x = lf.xml.as_ref().ok_or_else(|| bad("format = \"xml\" needs an [xml] section".into()))?;
            let d = XmlLimits::default();
            let limits = XmlLimits {
                max_depth: x.max_depth.unwrap_or(d.max_depth),
                max_attributes: x.max_attributes.unwrap_or(d.max_attributes),
                max_text_bytes: x.max_text_bytes.unwrap_or(d.max_text_bytes),
                max_record_bytes: x.max_record_bytes.unwrap_or(d.max_record_bytes),
            };
            if limits.max_depth < 3 || limits.max_attributes == 0 || limits.max_text_bytes == 0 || limits.max_record_bytes == 0 {
                return Err(bad("[xml] limits must allow a record's children (max_depth ≥ 3) and be positive".into()));
            }
            let plan = XmlPlan { root: x.root.clone(), record: x.record.clone(), fields: Vec::new(), lists: Vec::new(), limits };
            SourceFormat::Xml { plan, insurer_attribute: x.insurer_attribute.clone() }
        }
    };
    match (&format, lf.encoding) {
        (SourceFormat::Xml { .. }, EncodingName::Declared)
        | (SourceFormat::Csv { .. } | SourceFormat::Fixed { .. }, EncodingName::Cp932 | EncodingName::Utf8) => {}
        (SourceFormat::Xml { .. }, _) => {
            return Err(bad("an XML layout takes its encoding from the declaration: encoding = \"declared\"".into()));
        }
        (_, _) => return Err(bad("encoding = \"declared\" is only for XML layouts".into())),
    }
    if !matches!(format, SourceFormat::Xml { .. }) && !lf.lists.is_empty() {
        return Err(bad("[[lists]] are only for XML layouts".into()));
    }
    if matches!(format, SourceFormat::Xml { .. }) && lf.envelope.is_some() {
        return Err(bad("an XML layout has no [envelope]: the root element is checked with [xml] insurer_attribute".into()));
    }
    let format_ref = &format;
    let loc = |what: &str, field: Option<usize>, bytes: Option<[usize; 2]>| -> Result<Loc, MappingError> {
        match (format_ref, field, bytes) {
            (SourceFormat::Csv { .. }, Some(n), None) if n >= 1 => Ok(Loc::Field(n - 1)),
            (&SourceFormat::Fixed { record_len, .. }, None, Some([first, len])) => {
                if first == 0 || len == 0 || first - 1 + len > record_len {
                    return Err(bad(format!("{what}: bytes [{first}, {len}] lie outside a {record_len}-byte record")));
                }
                Ok(Loc::Bytes(first - 1, len))
            }
            (SourceFormat::Csv { .. }, _, _) => Err(bad(format!("{what}: a CSV layout places values with `field = N` (1-based)"))),
            (SourceFormat::Fixed { .. }, _, _) => Err(bad(format!("{what}: a fixed layout places values with `bytes = [first, len]`"))),
            (SourceFormat::Xml { .. }, _, _) => Err(bad(format!("{what}: an XML layout places values with `element` or `root_attribute`"))),
        }
    };
    let primary = schemas
        .get(&lf.primary_record_set)
        .ok_or_else(|| bad(format!("primary_record_set `{}` is not a record set", lf.primary_record_set)))?
        .clone();

    // Columns fed by each field, to settle decimals' scales and `ends_period`.
    let mut feeds: HashMap<&str, Vec<(&RecordSetSchema, usize)>> = HashMap::new();
    for o in &lf.outputs {
        let set = schemas.get(&o.record_set).ok_or_else(|| bad(format!("output: `{}` is not a record set", o.record_set)))?;
        for (col, src) in &o.columns {
            let ci = set.index_of(col).ok_or_else(|| bad(format!("output {}: `{col}` is not a column of the set", o.record_set)))?;
            let field = match src {
                ColumnSection::Field(f) => Some(f.as_str()),
                ColumnSection::Spec(s) if s.lookup.is_none() => s.field.as_deref(),
                _ => None,
            };
            if let Some(f) = field {
                feeds.entry(f).or_default().push((set, ci));
            }
        }
    }

    let mut fields = Vec::with_capacity(lf.fields.len());
    let mut xml_fields = Vec::new();
    for f in &lf.fields {
        let what = format!("field `{}`", f.name);
        if fields.iter().any(|x: &FieldDef| x.name == f.name) {
            return Err(bad(format!("{what} is declared twice")));
        }
        let xml_source = match (&format_ref, &f.element, &f.root_attribute) {
            (SourceFormat::Xml { .. }, Some(e), None) if f.field.is_none() && f.bytes.is_none() => Some(XmlFieldSource::Element(e.clone())),
            (SourceFormat::Xml { .. }, None, Some(a)) if f.field.is_none() && f.bytes.is_none() => {
                Some(XmlFieldSource::RootAttribute(a.clone()))
            }
            (SourceFormat::Xml { .. }, _, _) => {
                return Err(bad(format!("{what}: an XML layout places values with exactly one of `element` or `root_attribute`")));
            }
            (_, None, None) => None,
            (_, _, _) => return Err(bad(format!("{what}: `element` and `root_attribute` are only for XML layouts"))),
        };
        let l = match &xml_source {
            Some(_) => Loc::Field(fields.len()),
            None => loc(&what, f.field, f.bytes)?,
        };
        if let (Loc::Field(i), &SourceFormat::Csv { fields: n, .. }) = (l, format_ref)
            && i >= n
        {
            return Err(bad(format!("{what}: field {} is beyond the {n} fields of a record", i + 1)));
        }
        let fed = feeds.get(f.name.as_str()).cloned().unwrap_or_default();
        let kind = match f.kind.as_str() {
            "text" => FieldKind::Text,
            "int" => FieldKind::Int,
            "decimal" => {
                let scale = fed.iter().find_map(|(s, ci)| match s.columns[*ci].data_type {
                    DataType::Decimal128(_, sc) => Some(sc),
                    _ => None,
                });
                FieldKind::Decimal(scale.unwrap_or(0))
            }
            "date" => {
                let style = f.date.as_deref().ok_or_else(|| bad(format!("{what}: a date field needs `date = \"<style>\"`")))?;
                FieldKind::Date(style.parse().map_err(|_| bad(format!("{what}: unknown date style `{style}`")))?)
            }
            other => return Err(bad(format!("{what}: type `{other}` is not text, int, decimal or date"))),
        };
        if f.date.is_some() && !matches!(kind, FieldKind::Date(_)) {
            return Err(bad(format!("{what}: `date` is only for date fields")));
        }
        let pad = match f.pad.as_deref() {
            None | Some("none") => Pad::None,
            Some("space") => Pad::Space,
            Some("zenkaku") => Pad::Zenkaku,
            Some(other) => return Err(bad(format!("{what}: pad `{other}` is not none, space or zenkaku"))),
        };
        let normalize_insurer = match f.normalize.as_deref() {
            None => false,
            Some("insurer_no") => true,
            Some(other) => return Err(bad(format!("{what}: normalize `{other}` is not insurer_no"))),
        };
        if let Some(t) = &f.code_table
            && !codes.contains_key(t)
        {
            return Err(bad(format!("{what}: unknown code table `{t}` (mappings/codes/{t}.tsv)")));
        }
        // Type compatibility with every column the field fills.
        for (s, ci) in &fed {
            let c = &s.columns[*ci];
            let ok = matches!(
                (kind, &c.data_type),
                (FieldKind::Text, DataType::Utf8)
                    | (FieldKind::Int, DataType::Int32 | DataType::Int64)
                    | (FieldKind::Decimal(_), DataType::Decimal128(_, _))
                    | (FieldKind::Date(_), DataType::Date32)
            );
            if !ok {
                return Err(bad(format!("{what} ({}) cannot fill column {}.{} of type {}", f.kind, s.name, c.name, c.data_type)));
            }
        }
        let ends_period = f.ends_period || fed.iter().any(|(s, ci)| s.columns[*ci].ends_period);
        fields.push(FieldDef {
            name: f.name.clone(),
            label: f.label.clone(),
            number: if xml_source.is_some() { fields.len() + 1 } else { f.field.unwrap_or_else(|| f.bytes.map(|b| b[0]).unwrap_or(0)) },
            loc: l,
            kind,
            pad,
            normalize_insurer,
            code_table: f.code_table.clone(),
            ends_period,
            place: xml_source.as_ref().map(|x| match x {
                XmlFieldSource::Element(e) => format!("element <{e}>"),
                XmlFieldSource::RootAttribute(a) => format!("root attribute `{a}`"),
            }),
        });
        if let Some(x) = xml_source {
            xml_fields.push(x);
        }
    }
    let mut lists = Vec::with_capacity(lf.lists.len());
    let mut xml_lists = Vec::with_capacity(lf.lists.len());
    for l in &lf.lists {
        let what = format!("list `{}`", l.name);
        if fields.iter().any(|f| f.name == l.name) || lists.iter().any(|x: &ListDef| x.name == l.name) {
            return Err(bad(format!("{what}: the name is declared twice")));
        }
        let [lo, hi] = l.numbers;
        if lo > hi || lo < i32::MIN as i64 || hi > i32::MAX as i64 {
            return Err(bad(format!("{what}: numbers = [{lo}, {hi}] is not a range of int32")));
        }
        lists.push(ListDef { name: l.name.clone(), label: l.label.clone(), element: l.element.clone(), numbers: (lo, hi) });
        xml_lists.push(XmlList {
            element: l.element.clone(),
            number_attribute: l.number.clone(),
            value: match &l.value_attribute {
                Some(a) => XmlValue::Attribute(a.clone()),
                None => XmlValue::Text,
            },
        });
    }
    let field_index = |what: &str, name: &str| -> Result<usize, MappingError> {
        fields.iter().position(|f| f.name == name).ok_or_else(|| bad(format!("{what}: unknown field `{name}`")))
    };

    let scalar_for = |dt: &DataType, v: &str, what: &str| -> Result<Scalar, MappingError> {
        match dt {
            DataType::Utf8 => Ok(Scalar::Utf8(v.to_string())),
            DataType::Int32 | DataType::Int64 => {
                v.parse::<i64>().map(Scalar::Int).map_err(|_| bad(format!("{what}: `{v}` is not an integer")))
            }
            other => Err(bad(format!("{what}: constants of type {other} are not supported"))),
        }
    };

    let mut outputs = Vec::new();
    for o in &lf.outputs {
        let set = schemas.get(&o.record_set).cloned().ok_or_else(|| bad(format!("`{}` is not a record set", o.record_set)))?;
        let mut columns = vec![ColumnSource::Null; set.content_len()];
        for (col, src) in &o.columns {
            let what = format!("output {}.{col}", o.record_set);
            let ci = set.index_of(col).ok_or_else(|| bad(format!("{what}: not a column")))?;
            if ci >= set.content_len() {
                return Err(bad(format!("{what}: provenance columns are filled by kiban")));
            }
            let dt = &set.columns[ci].data_type;
            columns[ci] = match src {
                ColumnSection::Field(f) if lists.iter().any(|l| &l.name == f) => {
                    let li = lists.iter().position(|l| &l.name == f).unwrap_or_default();
                    if !is_numbered_list(dt) {
                        return Err(bad(format!("{what}: list `{f}` fills a list<struct<no:int32, value:utf8>> column, not {dt}")));
                    }
                    ColumnSource::List(li)
                }
                ColumnSection::Field(f) => ColumnSource::Field { field: field_index(&what, f)?, nfkc: false },
                ColumnSection::Spec(s) => {
                    let n = [s.field.is_some() && s.lookup.is_none(), s.value.is_some(), s.first_match.is_some(), s.lookup.is_some()]
                        .iter()
                        .filter(|b| **b)
                        .count();
                    if n != 1 {
                        return Err(bad(format!("{what}: give exactly one of field, value, lookup (with field) or first_match")));
                    }
                    if let Some(v) = &s.value {
                        ColumnSource::Const(scalar_for(dt, v, &what)?)
                    } else if let Some(t) = &s.lookup {
                        let f = field_index(&what, s.field.as_deref().ok_or_else(|| bad(format!("{what}: lookup needs a field")))?)?;
                        let table = codes.get(t).ok_or_else(|| bad(format!("{what}: unknown code table `{t}`")))?;
                        let mut values = HashMap::new();
                        for (k, v) in table.values() {
                            values.insert(k, scalar_for(dt, &v, &what)?);
                        }
                        if values.is_empty() {
                            return Err(bad(format!("{what}: code table `{t}` has no value column")));
                        }
                        ColumnSource::Lookup { field: f, values: Arc::new(values) }
                    } else if let Some(rules) = &s.first_match {
                        let mut v = Vec::new();
                        for r in rules {
                            let cond = match (&r.when_in, r.when_present.is_empty()) {
                                (Some(w), true) => Condition::In { field: field_index(&what, &w.field)?, values: w.values.clone() },
                                (None, false) => {
                                    Condition::AllPresent(r.when_present.iter().map(|f| field_index(&what, f)).collect::<Result<_, _>>()?)
                                }
                                (None, true) => Condition::Always,
                                (Some(_), false) => return Err(bad(format!("{what}: a rule has either when_in or when_present"))),
                            };
                            v.push((cond, scalar_for(dt, &r.value, &what)?));
                        }
                        if !matches!(v.last(), Some((Condition::Always, _))) && !set.columns[ci].nullable {
                            return Err(bad(format!("{what}: the last rule must match always (the column is not nullable)")));
                        }
                        ColumnSource::FirstMatch(v)
                    } else {
                        let f = field_index(&what, s.field.as_deref().unwrap_or(""))?;
                        let nfkc = match s.normalize.as_deref() {
                            None => false,
                            Some("nfkc") => true,
                            Some(other) => return Err(bad(format!("{what}: normalize `{other}` is not nfkc"))),
                        };
                        ColumnSource::Field { field: f, nfkc }
                    }
                }
            };
        }
        for (ci, c) in set.columns[..set.content_len()].iter().enumerate() {
            if matches!(columns[ci], ColumnSource::Null) && !c.nullable {
                return Err(bad(format!("output {}: column `{}` is not nullable and no field fills it", set.name, c.name)));
            }
        }
        for &k in &set.key {
            if matches!(columns[k], ColumnSource::Null) {
                return Err(bad(format!("output {}: key column `{}` is not filled", set.name, set.columns[k].name)));
            }
        }
        outputs.push(OutputPlan {
            when_present: o.when_present.iter().map(|f| field_index("when_present", f)).collect::<Result<_, _>>()?,
            when_any_present: o.when_any_present.iter().map(|f| field_index("when_any_present", f)).collect::<Result<_, _>>()?,
            set,
            columns,
        });
    }
    if outputs.is_empty() {
        return Err(bad("a mapping needs at least one [[outputs]]".into()));
    }

    let env_record = |what: &str, r: &EnvelopeRecordSection| -> Result<EnvelopeRecord, MappingError> {
        Ok(EnvelopeRecord {
            kind: r.kind.clone(),
            fields: r.fields,
            count: r.count.map(|l| loc(what, l.field, l.bytes)).transpose()?,
            insurer: r.insurer.map(|l| loc(what, l.field, l.bytes)).transpose()?,
            expect: r.expect.iter().map(|e| Ok((loc(what, e.field, e.bytes)?, e.value.clone()))).collect::<Result<_, MappingError>>()?,
            order: r.order.iter().map(|l| loc(what, l.field, l.bytes)).collect::<Result<_, _>>()?,
        })
    };
    let envelope = match &lf.envelope {
        None => None,
        Some(e) => Some(Envelope {
            kind: loc("envelope.kind", e.kind.field, e.kind.bytes)?,
            data_kind: e.data_kind.clone(),
            data_insurer: e.data_insurer.as_deref().map(|f| field_index("envelope.data_insurer", f)).transpose()?,
            header: e.header.as_ref().map(|h| env_record("envelope.header", h)).transpose()?,
            trailer: e.trailer.as_ref().map(|t| env_record("envelope.trailer", t)).transpose()?,
        }),
    };
    let apply_order_field = match &lf.apply_order {
        None => None,
        Some(a) => {
            let i = field_index("apply_order.date_field", &a.date_field)?;
            if !matches!(fields[i].kind, FieldKind::Date(_)) {
                return Err(bad("apply_order.date_field must be a date field".into()));
            }
            Some(i)
        }
    };
    // Key shapes are only meaningful on text.
    for o in &outputs {
        for &k in &o.set.key {
            if let (Some(Shape::Digits(_) | Shape::Chars(_)), ColumnSource::Field { field, .. }) = (o.set.columns[k].shape, &o.columns[k])
                && fields[*field].kind != FieldKind::Text
            {
                return Err(bad(format!("key column {}.{} has a shape but its field is not text", o.set.name, o.set.columns[k].name)));
            }
        }
    }
    if let SourceFormat::Xml { plan, .. } = &mut format {
        plan.fields = xml_fields;
        plan.lists = xml_lists;
    }
    Ok(Layout {
        name: lf.name,
        label: lf.label,
        file: file.to_string(),
        format,
        encoding: lf.encoding,
        mode: lf.mode,
        primary_record_set: primary,
        envelope,
        fields,
        lists,
        outputs,
        apply_order_field,
    })
}

/// `list<struct<no:int32, <value>:utf8>>`: what a numbered list fills.
fn is_numbered_list(dt: &DataType) -> bool {
    match dt {
        DataType::List(item) => match item.data_type() {
            DataType::Struct(fs) => fs.len() == 2 && fs[0].data_type() == &DataType::Int32 && fs[1].data_type() == &DataType::Utf8,
            _ => false,
        },
        _ => false,
    }
}
