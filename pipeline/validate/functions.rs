//! The DataFusion functions rules call: check digits, age, month arithmetic and code validity.
//!
//! | function | returns |
//! |---|---|
//! | `local_government_code_valid(code)` | 全国地方公共団体コード modulus 11 |
//! | `insurer_no_valid(no)` | 保険者番号 modulus 10 (use for warnings: the rule is not confirmed) |
//! | `office_no_valid(no)` | 事業所番号 modulus 10 (10 digits) |
//! | `public_payer_no_valid(no)` | 公費負担者番号 modulus 10 (8 digits) |
//! | `is_digits(text, n)` | exactly `n` ASCII digits |
//! | `age_on(birth_date, date)` | full years on `date` (ordinary counting; 年齢到達 is the day before the birthday, so legal age on D is `age_on(birth, D + 1 day)`) |
//! | `months_end(date, n)` | the last day of the `n`th month after the month of `date` |
//! | `code_valid('table', code [, date])` | `code` is in `mappings/codes/<table>.tsv` and valid on `date` (any date when null) |
//! | `run_date()` | the day of the run in Japan (JST), fixed for the whole run |
//!
//! All return NULL when an input is NULL, so a rule over a missing value passes, as an SQL CHECK
//! constraint does. A function called with the wrong arguments, or `code_valid` naming a table
//! that does not exist, fails when the rule is planned: at start-up, before any data is read.

use super::check_digit;
use crate::codec::wareki::{from_date32, to_date32};
use crate::map::codes::CodeTable;
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Date32Array, Int32Array, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use chrono::{Datelike, NaiveDate};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every function of this module, ready to register in a `SessionContext`.
pub fn all(codes: &BTreeMap<String, CodeTable>, run_date: NaiveDate) -> Vec<ScalarUDF> {
    let mut out: Vec<ScalarUDF> = [CheckKind::LocalGovernmentCode, CheckKind::InsurerNo, CheckKind::OfficeNo, CheckKind::PublicPayerNo]
        .into_iter()
        .map(|kind| ScalarUDF::from(CheckDigit { kind, signature: Signature::any(1, Volatility::Immutable) }))
        .collect();
    out.push(ScalarUDF::from(IsDigits { signature: Signature::any(2, Volatility::Immutable) }));
    out.push(ScalarUDF::from(AgeOn { signature: Signature::any(2, Volatility::Immutable) }));
    out.push(ScalarUDF::from(MonthsEnd { signature: Signature::any(2, Volatility::Immutable) }));
    out.push(ScalarUDF::from(CodeValid::new(codes)));
    out.push(ScalarUDF::from(RunDate { day: to_date32(run_date), signature: Signature::nullary(Volatility::Stable) }));
    out
}

/// Today in Japan: the municipality's working day, whatever the machine's zone.
pub fn today_in_japan() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(9)).date_naive()
}

fn array_of(v: &ColumnarValue, rows: usize, to: &DataType, func: &str) -> Result<ArrayRef> {
    let a = v.to_array(rows)?;
    if a.data_type() == to {
        return Ok(a);
    }
    arrow::compute::cast(&a, to)
        .map_err(|e| DataFusionError::Execution(format!("{func}: argument of type {} is not {to}: {e}", a.data_type())))
}

fn arg<'a>(args: &'a ScalarFunctionArgs, i: usize, func: &str) -> Result<&'a ColumnarValue> {
    match args.args.get(i) {
        Some(v) => Ok(v),
        None => exec_err!("{func}: missing argument {}", i + 1),
    }
}

/// The result is a scalar when every argument is: a rule over constants is folded once.
fn finish(args: &ScalarFunctionArgs, out: ArrayRef) -> Result<ColumnarValue> {
    if args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) && out.len() == 1 {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
    }
    Ok(ColumnarValue::Array(out))
}

fn expect_types(func: &str, got: &[DataType], want: &[&[DataType]]) -> Result<()> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if !w.contains(g) && !g.is_null() {
            return plan_err!("{func}: argument {} has type {g}, expected one of {w:?}", i + 1);
        }
    }
    Ok(())
}

const TEXT: &[DataType] = &[DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8];
const TEXT_OR_INT: &[DataType] = &[DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8, DataType::Int32, DataType::Int64];
const DATE: &[DataType] = &[DataType::Date32];
const INT: &[DataType] = &[DataType::Int64, DataType::Int32];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CheckKind {
    LocalGovernmentCode,
    InsurerNo,
    OfficeNo,
    PublicPayerNo,
}

impl CheckKind {
    fn name(self) -> &'static str {
        match self {
            CheckKind::LocalGovernmentCode => "local_government_code_valid",
            CheckKind::InsurerNo => "insurer_no_valid",
            CheckKind::OfficeNo => "office_no_valid",
            CheckKind::PublicPayerNo => "public_payer_no_valid",
        }
    }

    fn check(self, s: &str) -> bool {
        match self {
            CheckKind::LocalGovernmentCode => check_digit::local_government_code_valid(s),
            CheckKind::InsurerNo => check_digit::insurer_no_valid(s),
            CheckKind::OfficeNo => check_digit::office_no_valid(s),
            CheckKind::PublicPayerNo => check_digit::public_payer_no_valid(s),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckDigit {
    kind: CheckKind,
    signature: Signature,
}

impl ScalarUDFImpl for CheckDigit {
    fn name(&self) -> &str {
        self.kind.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        expect_types(self.kind.name(), t, &[TEXT])?;
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.kind.name();
        let a = array_of(arg(&args, 0, name)?, args.number_rows, &DataType::Utf8, name)?;
        let s = a.as_string::<i32>();
        let out: BooleanArray = s.iter().map(|v| v.map(|v| self.kind.check(v))).collect();
        finish(&args, Arc::new(out))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IsDigits {
    signature: Signature,
}

impl ScalarUDFImpl for IsDigits {
    fn name(&self) -> &str {
        "is_digits"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        expect_types("is_digits", t, &[TEXT, INT])?;
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let s = array_of(arg(&args, 0, "is_digits")?, args.number_rows, &DataType::Utf8, "is_digits")?;
        let n = array_of(arg(&args, 1, "is_digits")?, args.number_rows, &DataType::Int64, "is_digits")?;
        let (s, n) = (s.as_string::<i32>(), n.as_primitive::<arrow::datatypes::Int64Type>());
        let out: BooleanArray =
            s.iter().zip(n.iter()).map(|(s, n)| Some(s?.len() as i64 == n? && s?.bytes().all(|b| b.is_ascii_digit()))).collect();
        finish(&args, Arc::new(out))
    }
}

/// Full years from `birth` to `on`; a 29 February birthday falls on 1 March in common years.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let before_birthday = (on.month(), on.day()) < (birth.month(), birth.day());
    on.year() - birth.year() - i32::from(before_birthday)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AgeOn {
    signature: Signature,
}

impl ScalarUDFImpl for AgeOn {
    fn name(&self) -> &str {
        "age_on"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        expect_types("age_on", t, &[DATE, DATE])?;
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let b = array_of(arg(&args, 0, "age_on")?, args.number_rows, &DataType::Date32, "age_on")?;
        let d = array_of(arg(&args, 1, "age_on")?, args.number_rows, &DataType::Date32, "age_on")?;
        let (b, d) = (b.as_primitive::<arrow::datatypes::Date32Type>(), d.as_primitive::<arrow::datatypes::Date32Type>());
        let out: Int32Array = b.iter().zip(d.iter()).map(|(b, d)| Some(age_on(from_date32(b?)?, from_date32(d?)?))).collect();
        finish(&args, Arc::new(out))
    }
}

/// The last day of the `n`th month after the month of `d` (`n` may be 0: the end of d's month).
pub fn months_end(d: NaiveDate, n: i64) -> Option<NaiveDate> {
    let months = (i64::from(d.year()) * 12 + i64::from(d.month0())).checked_add(n)?.checked_add(1)?;
    let (y, m0) = (months.div_euclid(12), months.rem_euclid(12));
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, u32::try_from(m0).ok()? + 1, 1)?.pred_opt()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MonthsEnd {
    signature: Signature,
}

impl ScalarUDFImpl for MonthsEnd {
    fn name(&self) -> &str {
        "months_end"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        expect_types("months_end", t, &[DATE, INT])?;
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let d = array_of(arg(&args, 0, "months_end")?, args.number_rows, &DataType::Date32, "months_end")?;
        let n = array_of(arg(&args, 1, "months_end")?, args.number_rows, &DataType::Int64, "months_end")?;
        let (d, n) = (d.as_primitive::<arrow::datatypes::Date32Type>(), n.as_primitive::<arrow::datatypes::Int64Type>());
        let out: Date32Array = d.iter().zip(n.iter()).map(|(d, n)| Some(to_date32(months_end(from_date32(d?)?, n?)?))).collect();
        finish(&args, Arc::new(out))
    }
}

/// One code table in a form quick to search: tables hold a handful of short codes, so a linear
/// scan over codes packed into integers beats hashing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CodeSet {
    /// (code packed by [`pack`], first valid day, last valid day) as Date32, open ends as
    /// i32::MIN / i32::MAX.
    codes: Vec<(u64, i32, i32)>,
    /// Whether any code has a validity limit: when none has, the date is not even read.
    dated: bool,
}

/// A code of up to 7 bytes as one integer (bytes, then the length in the top byte); longer
/// values cannot be codes of a shipped table and pack to a value no code has.
fn pack(b: &[u8]) -> u64 {
    if b.len() > 7 {
        return u64::MAX;
    }
    let mut v = (b.len() as u64) << 56;
    for (i, x) in b.iter().enumerate() {
        v |= u64::from(*x) << (8 * i);
    }
    v
}

impl CodeSet {
    fn new(t: &CodeTable) -> CodeSet {
        let day = |d: Option<NaiveDate>, open: i32| d.map_or(open, to_date32);
        let codes: Vec<(u64, i32, i32)> = t
            .codes
            .iter()
            .filter(|c| c.code.len() <= 7)
            .map(|c| (pack(c.code.as_bytes()), day(c.valid_from, i32::MIN), day(c.valid_to, i32::MAX)))
            .collect();
        let dated = codes.iter().any(|(_, from, to)| *from != i32::MIN || *to != i32::MAX);
        CodeSet { codes, dated }
    }

    fn valid(&self, code: &[u8], on: Option<i32>) -> bool {
        let p = pack(code);
        self.codes.iter().any(|(c, from, to)| *c == p && on.is_none_or(|d| *from <= d && d <= *to))
    }

    /// Checks a whole column: null where the code (or a needed date) is null.
    fn check(&self, codes: &StringArray, dates: Option<&Date32Array>) -> BooleanArray {
        let n = codes.len();
        match dates.filter(|_| self.dated) {
            None => {
                let values = arrow::buffer::BooleanBuffer::collect_bool(n, |i| self.valid(codes.value(i).as_bytes(), None));
                BooleanArray::new(values, codes.nulls().cloned())
            }
            Some(d) => {
                let values = arrow::buffer::BooleanBuffer::collect_bool(n, |i| {
                    self.valid(codes.value(i).as_bytes(), if d.is_null(i) { None } else { Some(d.value(i)) })
                });
                BooleanArray::new(values, codes.nulls().cloned())
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CodeValid {
    tables: BTreeMap<String, CodeSet>,
    signature: Signature,
}

impl CodeValid {
    fn new(codes: &BTreeMap<String, CodeTable>) -> CodeValid {
        CodeValid {
            tables: codes.iter().map(|(k, v)| (k.clone(), CodeSet::new(v))).collect(),
            signature: Signature::one_of(vec![TypeSignature::Any(2), TypeSignature::Any(3)], Volatility::Immutable),
        }
    }

    fn table_name(v: Option<&ScalarValue>) -> Option<&str> {
        match v? {
            ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => Some(s),
            _ => None,
        }
    }
}

impl ScalarUDFImpl for CodeValid {
    fn name(&self) -> &str {
        "code_valid"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    // The table is checked while the rule is planned, so an unknown table is a configuration
    // error at start-up rather than a failure halfway through a load.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let date: &[DataType] = if types.len() == 3 { DATE } else { &[] };
        expect_types("code_valid", &types, &[TEXT, TEXT_OR_INT, date])?;
        match Self::table_name(args.scalar_arguments.first().copied().flatten()) {
            None => return plan_err!("code_valid: the first argument must be a code table name in quotes, e.g. code_valid('sex', sex)"),
            Some(t) if !self.tables.contains_key(t) => {
                return plan_err!("code_valid: unknown code table `{t}` (no mappings/codes/{t}.tsv)");
            }
            Some(_) => {}
        }
        Ok(Arc::new(Field::new("code_valid", DataType::Boolean, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = match arg(&args, 0, "code_valid")? {
            ColumnarValue::Scalar(s) => Self::table_name(Some(s)),
            ColumnarValue::Array(_) => None,
        };
        let Some(table) = name.and_then(|n| self.tables.get(n)) else {
            return exec_err!("code_valid: the first argument must name a code table");
        };
        let codes = array_of(arg(&args, 1, "code_valid")?, args.number_rows, &DataType::Utf8, "code_valid")?;
        let codes: &StringArray = codes.as_string::<i32>();
        // A null date means "no date to check against": the code must exist, on any date.
        let out = match args.args.get(2).filter(|_| table.dated) {
            None => table.check(codes, None),
            Some(d) => {
                let d = array_of(d, args.number_rows, &DataType::Date32, "code_valid")?;
                table.check(codes, Some(d.as_primitive::<arrow::datatypes::Date32Type>()))
            }
        };
        finish(&args, Arc::new(out))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RunDate {
    day: i32,
    signature: Signature,
}

impl ScalarUDFImpl for RunDate {
    fn name(&self) -> &str {
        "run_date"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Date32(Some(self.day))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn age_counts_full_years() {
        assert_eq!(age_on(d(1960, 4, 1), d(2025, 3, 31)), 64);
        assert_eq!(age_on(d(1960, 4, 1), d(2025, 4, 1)), 65);
        // 年齢到達 is the day before the birthday: legal age on D is the ordinary age on D + 1.
        assert_eq!(age_on(d(1960, 4, 1), d(2025, 3, 31).succ_opt().unwrap()), 65);
        assert_eq!(age_on(d(1960, 2, 29), d(2025, 2, 28)), 64);
        assert_eq!(age_on(d(1960, 2, 29), d(2025, 3, 1)), 65);
    }

    #[test]
    fn months_end_counts_calendar_months() {
        assert_eq!(months_end(d(2024, 4, 15), 12), Some(d(2025, 4, 30)));
        assert_eq!(months_end(d(2024, 1, 31), 1), Some(d(2024, 2, 29)));
        assert_eq!(months_end(d(2024, 12, 1), 48), Some(d(2028, 12, 31)));
        assert_eq!(months_end(d(2024, 12, 1), 0), Some(d(2024, 12, 31)));
        assert_eq!(months_end(d(2024, 12, 1), i64::MAX), None, "no overflow on any input");
        assert_eq!(months_end(d(2024, 12, 1), i64::MIN), None);
    }

    #[test]
    fn code_sets_honour_dates() {
        let t = CodeTable::from_tsv("care_level", "code\tlabel\tvalid_from\tvalid_to\n11\ta\t\t2009-03-31\n12\tb\t2006-04-01\t\n").unwrap();
        let s = CodeSet::new(&t);
        assert!(s.valid(b"11", Some(to_date32(d(2009, 3, 31)))));
        assert!(!s.valid(b"11", Some(to_date32(d(2009, 4, 1)))));
        assert!(!s.valid(b"12", Some(to_date32(d(2006, 3, 31)))));
        assert!(s.valid(b"12", None));
        assert!(!s.valid(b"99", None));
        assert!(!s.valid(b"121", None), "a longer value is not a prefix match");
        assert!(!s.valid(b"1", None));
        assert!(!s.valid(b"0123456789", None));
        let col = StringArray::from(vec![Some("11"), None, Some("12"), Some("x")]);
        let days = Date32Array::from(vec![Some(to_date32(d(2010, 1, 1))), Some(0), None, Some(0)]);
        let got = s.check(&col, Some(&days));
        assert_eq!(got.iter().collect::<Vec<_>>(), vec![Some(false), None, Some(true), Some(false)]);
    }
}
