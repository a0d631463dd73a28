//! 和暦 (Japanese era) and 西暦 dates to Arrow `Date32` (days since 1970-01-01).
//!
//! SPEC §4.7 and reference/codes.md "Dates". Parsing is strict: nothing is trimmed, and a date
//! that does not exist in its era (平成31年5月1日, 令和元年4月30日) is reported, never shifted.
//!
//! The eras are data, not code: they come from `mappings/eras.tsv` through [`EraTable::from_tsv`].
//! An era ends the day before the next one starts; the last era is open.
//!
//! Null conventions ([`parse_date`]):
//! - empty text, or only spaces (ASCII `' '` or 全角 `U+3000`): null, in every style;
//! - all zeros of the style's width: `00000000` (Yyyymmdd), `000000` (Yyyymm), `0000-00-00` (Iso),
//!   `0000000` (Wareki7, WarekiLetter, WarekiAny): null;
//! - all nines of the style's width: `99999999`, `999999`, `9999-99-99` (not 和暦): null in a
//!   column that ends a period, else [`DateError::OpenEndNotAllowed`].
//!
//! WarekiKanji has no zero or nine form; only blanks are null there.

use chrono::{Datelike, NaiveDate};
use std::fmt;
use std::str::FromStr;

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The header line `mappings/eras.tsv` must start with.
const ERA_TSV_HEADER: &str = "name\tletter\tdigit\tfirst_day";

/// One era of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Era {
    /// Kanji name as written in dates, e.g. the name in "…7年4月1日".
    pub name: String,
    /// Letter of the `R070401` spelling (ASCII upper case).
    pub letter: char,
    /// Digit of the `GYYMMDD` spelling (1–9).
    pub digit: u8,
    /// First day of the era (its 元年 starts in this calendar year).
    pub first_day: NaiveDate,
}

/// The era table, sorted by `first_day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraTable {
    eras: Vec<Era>,
    /// Era index by digit (0–9).
    by_digit: [Option<u8>; 10],
    /// Era index by letter (`A`–`Z`).
    by_letter: [Option<u8>; 26],
}

/// A problem in the era table text, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("era table, line {line}: {problem}")]
pub struct EraTableError {
    pub line: usize,
    pub problem: String,
}

fn table_err<T>(line: usize, problem: String) -> Result<T, EraTableError> {
    Err(EraTableError { line, problem })
}

impl EraTable {
    /// Reads the tab-separated era table: a header line `name\tletter\tdigit\tfirst_day`, then one
    /// era per line (`first_day` as `YYYY-MM-DD`). Blank lines and lines starting with `#` are
    /// skipped; CRLF and a leading BOM are accepted. Rows may come in any order.
    pub fn from_tsv(text: &str) -> Result<EraTable, EraTableError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut header_line = None;
        let mut last_line = 0;
        let mut rows: Vec<(usize, Era)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let no = index + 1;
            last_line = no;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if header_line.is_none() {
                if line != ERA_TSV_HEADER {
                    return table_err(no, format!("expected the header {ERA_TSV_HEADER:?}, found {line:?}"));
                }
                header_line = Some(no);
                continue;
            }
            let era = parse_era_row(no, line)?;
            for (other_no, other) in &rows {
                let clash = if other.name == era.name {
                    Some(format!("era name {:?}", era.name))
                } else if other.letter == era.letter {
                    Some(format!("letter {:?}", era.letter))
                } else if other.digit == era.digit {
                    Some(format!("digit {}", era.digit))
                } else if other.first_day == era.first_day {
                    Some(format!("first_day {}", era.first_day))
                } else {
                    None
                };
                if let Some(what) = clash {
                    return table_err(no, format!("{what} already used on line {other_no}"));
                }
            }
            rows.push((no, era));
        }
        let Some(header_no) = header_line else {
            return table_err(last_line.max(1), format!("missing header {ERA_TSV_HEADER:?}"));
        };
        if rows.is_empty() {
            return table_err(header_no, "no eras after the header".to_string());
        }
        rows.sort_by_key(|(_, era)| era.first_day);
        let eras: Vec<Era> = rows.into_iter().map(|(_, era)| era).collect();
        let mut by_digit = [None; 10];
        let mut by_letter = [None; 26];
        for (i, era) in eras.iter().enumerate() {
            // At most 9 eras: digits are unique and 1–9, so the index fits in u8.
            let i = u8::try_from(i).ok();
            if let Some(slot) = by_digit.get_mut(usize::from(era.digit)) {
                *slot = i;
            }
            if let Some(slot) = letter_slot(era.letter).and_then(|k| by_letter.get_mut(k)) {
                *slot = i;
            }
        }
        Ok(EraTable { eras, by_digit, by_letter })
    }

    /// The eras, sorted by first day.
    pub fn eras(&self) -> &[Era] {
        &self.eras
    }

    /// The era `date` falls in; `None` before the first era.
    pub fn era_of(&self, date: NaiveDate) -> Option<&Era> {
        let after = self.eras.partition_point(|e| e.first_day <= date);
        after.checked_sub(1).and_then(|i| self.eras.get(i))
    }

    /// Renders a date in a spelling (for generators and tests): Yyyymmdd `20260401`, Yyyymm
    /// `202604`, Iso `2026-04-01`, Wareki7 `4050101`, WarekiLetter `H050101`, WarekiKanji
    /// `平成5年1月1日` (ASCII digits, no padding, 元年 for year 1). WarekiAny renders as
    /// WarekiKanji. `None` when the date cannot be written in the style: 西暦 year outside
    /// 1–9999, before the first era, or an era year above 99.
    pub fn format(&self, date: NaiveDate, style: DateStyle) -> Option<String> {
        let (year, month, day) = (date.year(), date.month(), date.day());
        match style {
            DateStyle::Yyyymmdd | DateStyle::Yyyymm | DateStyle::Iso => {
                if !(1..=9999).contains(&year) {
                    return None;
                }
                Some(match style {
                    DateStyle::Yyyymmdd => format!("{year:04}{month:02}{day:02}"),
                    DateStyle::Yyyymm => format!("{year:04}{month:02}"),
                    _ => format!("{year:04}-{month:02}-{day:02}"),
                })
            }
            DateStyle::Wareki7 | DateStyle::WarekiLetter | DateStyle::WarekiKanji | DateStyle::WarekiAny => {
                let era = self.era_of(date)?;
                let era_year = year - era.first_day.year() + 1;
                if !(1..=99).contains(&era_year) {
                    return None;
                }
                Some(match style {
                    DateStyle::Wareki7 => {
                        format!("{}{era_year:02}{month:02}{day:02}", era.digit)
                    }
                    DateStyle::WarekiLetter => {
                        format!("{}{era_year:02}{month:02}{day:02}", era.letter)
                    }
                    _ if era_year == 1 => format!("{}元年{month}月{day}日", era.name),
                    _ => format!("{}{era_year}年{month}月{day}日", era.name),
                })
            }
        }
    }

    fn era_by_digit(&self, digit: u32) -> Option<usize> {
        let slot = self.by_digit.get(usize::try_from(digit).ok()?)?;
        slot.map(usize::from)
    }

    fn era_by_letter(&self, letter: u8) -> Option<usize> {
        let slot = self.by_letter.get(letter_slot(char::from(letter))?)?;
        slot.map(usize::from)
    }

    fn era_by_name(&self, name: &str) -> Option<usize> {
        self.eras.iter().position(|e| e.name == name)
    }

    /// Days since 1970-01-01 of `era_year`/`month`/`day` in era number `index`.
    fn era_date(&self, index: usize, era_year: u32, month: u32, day: u32) -> Result<i32, DateError> {
        let era = self.eras.get(index).ok_or(DateError::UnknownEra)?;
        // era_year ≤ 99 (two digits), so this cannot overflow.
        let year = era.first_day.year() + era_year as i32 - 1;
        let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(DateError::NotACalendarDate)?;
        if date < era.first_day {
            return Err(DateError::BeforeEraStart);
        }
        if let Some(next) = self.eras.get(index + 1)
            && date >= next.first_day
        {
            return Err(DateError::EraOverflow);
        }
        Ok(to_date32(date))
    }
}

fn letter_slot(letter: char) -> Option<usize> {
    letter.is_ascii_uppercase().then(|| usize::from(letter as u8 - b'A'))
}

fn parse_era_row(no: usize, line: &str) -> Result<Era, EraTableError> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [name, letter, digit, first_day] = fields.as_slice() else {
        return table_err(no, format!("expected 4 tab-separated fields (name, letter, digit, first_day), found {}", fields.len()));
    };
    if name.is_empty() {
        return table_err(no, "empty era name".to_string());
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| c.is_ascii() || c.is_whitespace() || c.is_control() || digit_value(c).is_some() || matches!(c, '年' | '月' | '日'))
    {
        return table_err(no, format!("era name {name:?} contains {bad:?} (ASCII, spaces, digits and 年月日 are not allowed)"));
    }
    let mut letter_chars = letter.chars();
    let letter = match (letter_chars.next(), letter_chars.next()) {
        (Some(c), None) if c.is_ascii_uppercase() => c,
        _ => {
            return table_err(no, format!("letter {letter:?} is not a single ASCII upper-case letter"));
        }
    };
    let digit = match digit.as_bytes() {
        [d @ b'1'..=b'9'] => d - b'0',
        _ => return table_err(no, format!("digit {digit:?} is not a single digit 1-9")),
    };
    let first_day = parse_iso_date(first_day)
        .ok_or_else(|| EraTableError { line: no, problem: format!("first_day {first_day:?} is not a YYYY-MM-DD calendar date") })?;
    Ok(Era { name: name.to_string(), letter, digit, first_day })
}

fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    match text.as_bytes() {
        [y @ .., b'-', m1, m2, b'-', d1, d2] if y.len() == 4 => {
            NaiveDate::from_ymd_opt(num(y)? as i32, num(&[*m1, *m2])?, num(&[*d1, *d2])?)
        }
        _ => None,
    }
}

/// How a date column is spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DateStyle {
    /// 西暦 `20260401`.
    Yyyymmdd,
    /// 西暦 `202604`, read as the first day of the month.
    Yyyymm,
    /// `2026-04-01`.
    Iso,
    /// `GYYMMDD`, G = era digit: `4050101` = 平成5年1月1日.
    Wareki7,
    /// `H050101` (era letter, then YYMMDD).
    WarekiLetter,
    /// `令和7年4月1日`, also `令和元年5月1日`; digits ASCII or full-width, 1 or 2 per number.
    WarekiKanji,
    /// Any of the three 和暦 spellings, detected from the text.
    WarekiAny,
}

impl DateStyle {
    /// Every style, in declaration order.
    pub const ALL: [DateStyle; 7] = [
        DateStyle::Yyyymmdd,
        DateStyle::Yyyymm,
        DateStyle::Iso,
        DateStyle::Wareki7,
        DateStyle::WarekiLetter,
        DateStyle::WarekiKanji,
        DateStyle::WarekiAny,
    ];

    /// The name `FromStr` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            DateStyle::Yyyymmdd => "yyyymmdd",
            DateStyle::Yyyymm => "yyyymm",
            DateStyle::Iso => "iso",
            DateStyle::Wareki7 => "wareki7",
            DateStyle::WarekiLetter => "wareki_letter",
            DateStyle::WarekiKanji => "wareki_kanji",
            DateStyle::WarekiAny => "wareki",
        }
    }
}

impl fmt::Display for DateStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A date style name that is not one of those [`DateStyle`] knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown date style {0:?} (expected yyyymmdd, yyyymm, iso, wareki7, wareki_letter, wareki_kanji or wareki)")]
pub struct UnknownDateStyle(pub String);

impl FromStr for DateStyle {
    type Err = UnknownDateStyle;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateStyle::ALL.into_iter().find(|style| style.as_str() == s).ok_or_else(|| UnknownDateStyle(s.to_string()))
    }
}

/// Why a date field is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Wrong length, non-digit, unknown shape.
    #[error("malformed date (wrong length, non-digit or unknown shape)")]
    Malformed,
    /// E.g. 20250230, month 13, day 0 (a fully-zero date is null, not an error).
    #[error("not a calendar date")]
    NotACalendarDate,
    /// Era digit, letter or name not in the era table.
    #[error("unknown era")]
    UnknownEra,
    /// Past the end of its era: 平成31年5月1日, 昭和64年1月8日.
    #[error("date is past the end of its era")]
    EraOverflow,
    /// Before the first day of its era: 平成元年1月7日, 令和元年4月30日, anything before the first era.
    #[error("date is before the first day of its era")]
    BeforeEraStart,
    /// All nines ("no end") in a column that does not end a period.
    #[error("open end (all nines) in a column that does not end a period")]
    OpenEndNotAllowed,
}

impl DateError {
    /// A short English reason (same text as `Display`).
    pub fn describe(&self) -> &'static str {
        match self {
            DateError::Malformed => "malformed date (wrong length, non-digit or unknown shape)",
            DateError::NotACalendarDate => "not a calendar date",
            DateError::UnknownEra => "unknown era",
            DateError::EraOverflow => "date is past the end of its era",
            DateError::BeforeEraStart => "date is before the first day of its era",
            DateError::OpenEndNotAllowed => "open end (all nines) in a column that does not end a period",
        }
    }
}

/// Days since 1970-01-01 (Arrow `Date32`).
#[inline]
pub fn to_date32(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// The date `days` after 1970-01-01; `None` outside chrono's range.
#[inline]
pub fn from_date32(days: i32) -> Option<NaiveDate> {
    days.checked_add(EPOCH_DAYS_FROM_CE).and_then(NaiveDate::from_num_days_from_ce_opt)
}

/// Parses one date field into days since 1970-01-01.
///
/// `text` is the decoded field content. Blank (empty, or only ASCII/全角 spaces) and all-zero
/// dates are `Ok(None)`; all nines are `Ok(None)` when `ends_period`, else
/// [`DateError::OpenEndNotAllowed`] (see the module documentation for the widths per style).
/// Nothing is trimmed: `" 20260401"` is [`DateError::Malformed`]. Does not allocate.
pub fn parse_date(text: &str, style: DateStyle, ends_period: bool, eras: &EraTable) -> Result<Option<i32>, DateError> {
    let b = text.as_bytes();
    match style {
        DateStyle::Yyyymmdd => {
            if let [y0, y1, y2, y3, m0, m1, d0, d1] = *b
                && let (Some(y), Some(m), Some(d)) = (num(&[y0, y1, y2, y3]), num(&[m0, m1]), num(&[d0, d1]))
            {
                return western(y, m, d, 99, ends_period);
            }
            blank_or_malformed(text)
        }
        DateStyle::Yyyymm => {
            if let [y0, y1, y2, y3, m0, m1] = *b
                && let (Some(y), Some(m)) = (num(&[y0, y1, y2, y3]), num(&[m0, m1]))
            {
                if y == 0 && m == 0 {
                    return Ok(None);
                }
                return western(y, m, 1, 1, ends_period);
            }
            blank_or_malformed(text)
        }
        DateStyle::Iso => {
            if let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *b
                && let (Some(y), Some(m), Some(d)) = (num(&[y0, y1, y2, y3]), num(&[m0, m1]), num(&[d0, d1]))
            {
                return western(y, m, d, 99, ends_period);
            }
            blank_or_malformed(text)
        }
        DateStyle::Wareki7 => parse_wareki7(text, ends_period, eras),
        DateStyle::WarekiLetter => parse_wareki_letter(text, ends_period, eras),
        DateStyle::WarekiKanji => parse_wareki_kanji(text, eras),
        DateStyle::WarekiAny => match b.first() {
            Some(c) if c.is_ascii_digit() => parse_wareki7(text, ends_period, eras),
            Some(c) if c.is_ascii_alphabetic() => parse_wareki_letter(text, ends_period, eras),
            _ => parse_wareki_kanji(text, eras),
        },
    }
}

/// A 西暦 date whose digits have been read; `nines_day` is the day value of the all-nines form
/// (99, or 1 for Yyyymm where the day is implied).
#[inline]
fn western(y: u32, m: u32, d: u32, nines_day: u32, ends_period: bool) -> Result<Option<i32>, DateError> {
    if y == 0 && m == 0 && d == 0 {
        return Ok(None);
    }
    if y == 9999 && m == 99 && d == nines_day {
        return open_end(ends_period);
    }
    if y == 0 {
        return Err(DateError::NotACalendarDate);
    }
    // y ≤ 9999, so the cast is lossless.
    NaiveDate::from_ymd_opt(y as i32, m, d).map(|date| Some(to_date32(date))).ok_or(DateError::NotACalendarDate)
}

fn parse_wareki7(text: &str, ends_period: bool, eras: &EraTable) -> Result<Option<i32>, DateError> {
    if let [g, y0, y1, m0, m1, d0, d1] = *text.as_bytes()
        && let (Some(g), Some(yy), Some(mm), Some(dd)) = (num(&[g]), num(&[y0, y1]), num(&[m0, m1]), num(&[d0, d1]))
    {
        if g == 0 && yy == 0 && mm == 0 && dd == 0 {
            return Ok(None);
        }
        // SPEC §4.7 gives "no end" to the 8-digit `99999999` only: in 和暦 `9999999` names era 9,
        // which does not exist, so it is an invalid date like any other unknown era.
        let _ = ends_period;
        let era = eras.era_by_digit(g).ok_or(DateError::UnknownEra)?;
        return eras.era_date(era, yy, mm, dd).map(Some);
    }
    blank_or_malformed(text)
}

fn parse_wareki_letter(text: &str, ends_period: bool, eras: &EraTable) -> Result<Option<i32>, DateError> {
    let _ = ends_period;
    if text == "0000000" {
        return Ok(None);
    }
    if let [letter, y0, y1, m0, m1, d0, d1] = *text.as_bytes()
        && letter.is_ascii_alphabetic()
        && let (Some(yy), Some(mm), Some(dd)) = (num(&[y0, y1]), num(&[m0, m1]), num(&[d0, d1]))
    {
        let era = eras.era_by_letter(letter).ok_or(DateError::UnknownEra)?;
        return eras.era_date(era, yy, mm, dd).map(Some);
    }
    blank_or_malformed(text)
}

fn parse_wareki_kanji(text: &str, eras: &EraTable) -> Result<Option<i32>, DateError> {
    if is_blank(text) {
        return Ok(None);
    }
    let (name, yy, mm, dd) = split_kanji(text).ok_or(DateError::Malformed)?;
    let era = eras.era_by_name(name).ok_or(DateError::UnknownEra)?;
    eras.era_date(era, yy, mm, dd).map(Some)
}

/// Splits `<name><year>年<month>月<day>日` (year = 元 or 1–2 digits; month and day 1–2 digits,
/// ASCII or full-width) into its parts. The name ends at the first digit or at a `元` that is
/// directly followed by `年`.
fn split_kanji(text: &str) -> Option<(&str, u32, u32, u32)> {
    let cut = text.char_indices().find_map(|(i, c)| {
        let starts_year =
            digit_value(c).is_some() || (c == '元' && text.get(i + c.len_utf8()..).is_some_and(|after| after.starts_with('年')));
        starts_year.then_some(i)
    })?;
    let (name, rest) = text.split_at_checked(cut)?;
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (yy, rest) = match rest.strip_prefix('元') {
        Some(after) => (1, after),
        None => take_number(rest)?,
    };
    let (mm, rest) = take_number(rest.strip_prefix('年')?)?;
    let (dd, rest) = take_number(rest.strip_prefix('月')?)?;
    (rest == "日").then_some((name, yy, mm, dd))
}

/// One or two leading digits (ASCII or full-width) and the rest; `None` for zero or 3+ digits.
fn take_number(s: &str) -> Option<(u32, &str)> {
    let mut value = 0;
    let mut count = 0;
    for (i, c) in s.char_indices() {
        match digit_value(c) {
            Some(d) => {
                count += 1;
                if count > 2 {
                    return None;
                }
                value = value * 10 + d;
            }
            None => {
                return (count > 0).then(|| s.get(i..)).flatten().map(|rest| (value, rest));
            }
        }
    }
    (count > 0).then_some((value, ""))
}

#[inline]
fn digit_value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

/// The value of a run of ASCII digits; `None` if any byte is not a digit.
#[inline]
fn num(digits: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + u32::from(d);
    }
    Some(value)
}

#[inline]
fn open_end(ends_period: bool) -> Result<Option<i32>, DateError> {
    if ends_period { Ok(None) } else { Err(DateError::OpenEndNotAllowed) }
}

#[inline]
fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c == ' ' || c == '\u{3000}')
}

#[inline]
fn blank_or_malformed(text: &str) -> Result<Option<i32>, DateError> {
    if is_blank(text) { Ok(None) } else { Err(DateError::Malformed) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Days;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    const ERAS_TSV: &str = include_str!("../../mappings/eras.tsv");

    static TABLE: LazyLock<EraTable> = LazyLock::new(|| EraTable::from_tsv(ERAS_TSV).expect("mappings/eras.tsv parses"));

    const WAREKI_SPELLINGS: [DateStyle; 3] = [DateStyle::Wareki7, DateStyle::WarekiLetter, DateStyle::WarekiKanji];

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn parse(text: &str, style: DateStyle) -> Result<Option<NaiveDate>, DateError> {
        parse_date(text, style, false, &TABLE).map(|days| days.map(|d| from_date32(d).expect("Date32 in range")))
    }

    fn parse_end(text: &str, style: DateStyle) -> Result<Option<NaiveDate>, DateError> {
        parse_date(text, style, true, &TABLE).map(|days| days.map(|d| from_date32(d).expect("Date32 in range")))
    }

    fn ok(text: &str, style: DateStyle, expected: NaiveDate) {
        assert_eq!(parse(text, style), Ok(Some(expected)), "{text:?} as {style}");
        assert_eq!(parse_end(text, style), Ok(Some(expected)), "{text:?} as {style} (ends period)");
    }

    fn err(text: &str, style: DateStyle, expected: DateError) {
        assert_eq!(parse(text, style), Err(expected.clone()), "{text:?} as {style}");
        assert_eq!(parse_end(text, style), Err(expected), "{text:?} as {style} (ends period)");
    }

    fn to_full_width(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).expect("digit"),
                other => other,
            })
            .collect()
    }

    /// Writes `date` in `era` whatever era it really belongs to (era year may be 0 or past the
    /// era's end). `pad` zero-pads kanji numbers to two digits, `gannen` writes year 1 as 元.
    fn spell(era: &Era, date: NaiveDate, style: DateStyle, full_width: bool, pad: bool, gannen: bool) -> String {
        let yy = date.year() - era.first_day.year() + 1;
        let (m, d) = (date.month(), date.day());
        match style {
            DateStyle::Wareki7 => format!("{}{yy:02}{m:02}{d:02}", era.digit),
            DateStyle::WarekiLetter => format!("{}{yy:02}{m:02}{d:02}", era.letter),
            DateStyle::WarekiKanji => {
                let year = if yy == 1 && gannen {
                    "元".to_string()
                } else if pad {
                    format!("{yy:02}")
                } else {
                    yy.to_string()
                };
                let body = if pad { format!("{year}年{m:02}月{d:02}日") } else { format!("{year}年{m}月{d}日") };
                let body = if full_width { to_full_width(&body) } else { body };
                format!("{}{body}", era.name)
            }
            other => unreachable!("not a 和暦 spelling: {other}"),
        }
    }

    // ---------------------------------------------------------------- era table

    #[test]
    fn table_from_data_file() {
        let eras = TABLE.eras();
        assert_eq!(eras.len(), 5);
        let summary: Vec<(&str, char, u8, NaiveDate)> = eras.iter().map(|e| (e.name.as_str(), e.letter, e.digit, e.first_day)).collect();
        assert_eq!(
            summary,
            vec![
                ("明治", 'M', 1, ymd(1868, 1, 25)),
                ("大正", 'T', 2, ymd(1912, 7, 30)),
                ("昭和", 'S', 3, ymd(1926, 12, 25)),
                ("平成", 'H', 4, ymd(1989, 1, 8)),
                ("令和", 'R', 5, ymd(2019, 5, 1)),
            ]
        );
    }

    #[test]
    fn era_of_dates() {
        let name = |d: NaiveDate| TABLE.era_of(d).map(|e| e.name.as_str());
        assert_eq!(name(ymd(1868, 1, 24)), None);
        assert_eq!(name(ymd(1600, 1, 1)), None);
        assert_eq!(name(ymd(1868, 1, 25)), Some("明治"));
        assert_eq!(name(ymd(1912, 7, 29)), Some("明治"));
        assert_eq!(name(ymd(1912, 7, 30)), Some("大正"));
        assert_eq!(name(ymd(1926, 12, 24)), Some("大正"));
        assert_eq!(name(ymd(1926, 12, 25)), Some("昭和"));
        assert_eq!(name(ymd(1989, 1, 7)), Some("昭和"));
        assert_eq!(name(ymd(1989, 1, 8)), Some("平成"));
        assert_eq!(name(ymd(2019, 4, 30)), Some("平成"));
        assert_eq!(name(ymd(2019, 5, 1)), Some("令和"));
        assert_eq!(name(ymd(9999, 12, 31)), Some("令和"));
    }

    #[test]
    fn table_rows_in_any_order_crlf_bom_comments() {
        let text = "\u{feff}# eras\r\nname\tletter\tdigit\tfirst_day\r\n\r\n令和\tR\t5\t2019-05-01\r\n平成\tH\t4\t1989-01-08\r\n";
        let table = EraTable::from_tsv(text).expect("parses");
        let names: Vec<&str> = table.eras().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["平成", "令和"]);
        assert_eq!(parse_date("H310430", DateStyle::WarekiLetter, false, &table), Ok(Some(to_date32(ymd(2019, 4, 30)))));
        assert_eq!(parse_date("H310501", DateStyle::WarekiLetter, false, &table), Err(DateError::EraOverflow));
        assert_eq!(parse_date("S640107", DateStyle::WarekiLetter, false, &table), Err(DateError::UnknownEra));
        assert_eq!(parse_date("3640107", DateStyle::Wareki7, false, &table), Err(DateError::UnknownEra));
        assert_eq!(parse_date("昭和64年1月7日", DateStyle::WarekiKanji, false, &table), Err(DateError::UnknownEra));
    }

    #[test]
    fn table_errors_name_the_line() {
        let h = "name\tletter\tdigit\tfirst_day\n";
        let line_of = |text: &str| EraTable::from_tsv(text).map(|_| ()).map_err(|e| e.line);
        assert_eq!(line_of(""), Err(1));
        assert_eq!(line_of("名前\t文字\t数字\t開始\n"), Err(1));
        assert_eq!(line_of(h), Err(1));
        assert_eq!(line_of(&format!("{h}明治\tM\t1\n")), Err(2));
        assert_eq!(line_of(&format!("{h}明治\tM\t1\t1868-01-25\t\n")), Err(2));
        assert_eq!(line_of(&format!("{h}明治\tM\t1\t1868-01-25\n大正\tt\t2\t1912-07-30\n")), Err(3));
        assert_eq!(line_of(&format!("{h}明治\tM\t1\t1868-01-25\n大正\tTT\t2\t1912-07-30\n")), Err(3));
        assert_eq!(line_of(&format!("{h}明治\tM\t0\t1868-01-25\n")), Err(2));
        assert_eq!(line_of(&format!("{h}明治\tM\t10\t1868-01-25\n")), Err(2));
        assert_eq!(line_of(&format!("{h}明治\tM\t1\t1868-1-25\n")), Err(2));
        assert_eq!(line_of(&format!("{h}明治\tM\t1\t1868-02-30\n")), Err(2));
        assert_eq!(line_of(&format!("{h}明治\tM\t1\t 1868-01-25\n")), Err(2));
        assert_eq!(line_of(&format!("{h}\tM\t1\t1868-01-25\n")), Err(2));
        assert_eq!(line_of(&format!("{h}明治2\tM\t1\t1868-01-25\n")), Err(2));
        assert_eq!(line_of(&format!("{h}明 治\tM\t1\t1868-01-25\n")), Err(2));
        assert_eq!(line_of(&format!("{h}Meiji\tM\t1\t1868-01-25\n")), Err(2));
        assert_eq!(line_of(&format!("{h}明治年\tM\t1\t1868-01-25\n")), Err(2));
        // Duplicates name the later line and mention the earlier one.
        let dup = EraTable::from_tsv(&format!("{h}明治\tM\t1\t1868-01-25\n\n大正\tT\t1\t1912-07-30\n")).expect_err("duplicate digit");
        assert_eq!(dup.line, 4);
        assert!(dup.problem.contains("digit 1") && dup.problem.contains("line 2"), "{dup}");
        assert!(dup.to_string().starts_with("era table, line 4:"), "{dup}");
        assert_eq!(line_of(&format!("{h}明治\tM\t1\t1868-01-25\n明治\tT\t2\t1912-07-30\n")), Err(3));
        assert_eq!(line_of(&format!("{h}明治\tM\t1\t1868-01-25\n大正\tM\t2\t1912-07-30\n")), Err(3));
        assert_eq!(line_of(&format!("{h}明治\tM\t1\t1868-01-25\n大正\tT\t2\t1868-01-25\n")), Err(3));
    }

    // ---------------------------------------------------------------- 西暦

    #[test]
    fn yyyymmdd() {
        let s = DateStyle::Yyyymmdd;
        ok("20260401", s, ymd(2026, 4, 1));
        ok("19700101", s, ymd(1970, 1, 1));
        ok("20240229", s, ymd(2024, 2, 29));
        ok("18000101", s, ymd(1800, 1, 1)); // before the first era: fine in 西暦
        ok("00010101", s, ymd(1, 1, 1));
        ok("99991231", s, ymd(9999, 12, 31));
        err("20250230", s, DateError::NotACalendarDate);
        err("20250229", s, DateError::NotACalendarDate);
        err("20261301", s, DateError::NotACalendarDate);
        err("20260001", s, DateError::NotACalendarDate);
        err("20260400", s, DateError::NotACalendarDate);
        err("20260000", s, DateError::NotACalendarDate);
        err("00000101", s, DateError::NotACalendarDate);
        err("00000001", s, DateError::NotACalendarDate);
        ok("99990101", s, ymd(9999, 1, 1));
        for bad in [
            " 20260401",
            "20260401 ",
            "2026041",
            "202604011",
            "2026O401",
            "２０２６０４０１",
            "2026-04-01",
            "+2026041",
            "2026040\u{3000}",
            "20260401\r",
            "R070401",
        ] {
            err(bad, s, DateError::Malformed);
        }
    }

    #[test]
    fn yyyymm() {
        let s = DateStyle::Yyyymm;
        ok("202604", s, ymd(2026, 4, 1));
        ok("186801", s, ymd(1868, 1, 1));
        ok("999912", s, ymd(9999, 12, 1));
        err("202613", s, DateError::NotACalendarDate);
        err("202600", s, DateError::NotACalendarDate);
        err("000001", s, DateError::NotACalendarDate);
        for bad in ["20260", "2026041", "20260401", " 202604", "2026-4", "２０２６０４"] {
            err(bad, s, DateError::Malformed);
        }
    }

    #[test]
    fn iso() {
        let s = DateStyle::Iso;
        ok("2026-04-01", s, ymd(2026, 4, 1));
        ok("1867-12-31", s, ymd(1867, 12, 31));
        err("2026-02-30", s, DateError::NotACalendarDate);
        err("2026-13-01", s, DateError::NotACalendarDate);
        err("2026-04-00", s, DateError::NotACalendarDate);
        err("0000-04-01", s, DateError::NotACalendarDate);
        for bad in [
            "2026/04/01",
            "2026-4-01",
            "2026-04-1",
            "20260401",
            " 2026-04-01",
            "2026-04-01T00:00",
            "2026--04-01",
            "+026-04-01",
            "２０２６-０４-０１",
        ] {
            err(bad, s, DateError::Malformed);
        }
    }

    // ---------------------------------------------------------------- 和暦

    #[test]
    fn wareki7() {
        let s = DateStyle::Wareki7;
        ok("4050101", s, ymd(1993, 1, 1)); // 平成5年1月1日
        ok("5070401", s, ymd(2025, 4, 1)); // 令和7年4月1日
        ok("5010501", s, ymd(2019, 5, 1));
        ok("1010125", s, ymd(1868, 1, 25));
        ok("1450729", s, ymd(1912, 7, 29));
        err("1451231", s, DateError::EraOverflow);
        ok("2010730", s, ymd(1912, 7, 30));
        ok("3011225", s, ymd(1926, 12, 25));
        ok("3640107", s, ymd(1989, 1, 7));
        ok("4010108", s, ymd(1989, 1, 8));
        ok("4310430", s, ymd(2019, 4, 30));
        ok("5990101", s, ymd(2117, 1, 1));
        err("1010124", s, DateError::BeforeEraStart);
        err("1000101", s, DateError::BeforeEraStart);
        err("4000101", s, DateError::BeforeEraStart);
        err("4010107", s, DateError::BeforeEraStart);
        err("5010430", s, DateError::BeforeEraStart);
        err("3640108", s, DateError::EraOverflow);
        err("4310501", s, DateError::EraOverflow);
        err("4990101", s, DateError::EraOverflow);
        err("6010101", s, DateError::UnknownEra);
        err("0050101", s, DateError::UnknownEra);
        err("9010101", s, DateError::UnknownEra);
        err("4051301", s, DateError::NotACalendarDate);
        err("4050230", s, DateError::NotACalendarDate);
        err("4050100", s, DateError::NotACalendarDate);
        err("4050001", s, DateError::NotACalendarDate);
        for bad in ["405010", "40501011", "H050101", " 405010", "4O50101", "４０５０１０１", "平成5年1月1日"] {
            err(bad, s, DateError::Malformed);
        }
    }

    #[test]
    fn wareki_letter() {
        let s = DateStyle::WarekiLetter;
        ok("H050101", s, ymd(1993, 1, 1));
        ok("R070401", s, ymd(2025, 4, 1));
        ok("M010125", s, ymd(1868, 1, 25));
        ok("T010730", s, ymd(1912, 7, 30));
        ok("T151224", s, ymd(1926, 12, 24));
        ok("S011225", s, ymd(1926, 12, 25));
        ok("S640107", s, ymd(1989, 1, 7));
        err("S010101", s, DateError::BeforeEraStart);
        err("H010107", s, DateError::BeforeEraStart);
        err("R010430", s, DateError::BeforeEraStart);
        err("T151225", s, DateError::EraOverflow);
        err("S640108", s, DateError::EraOverflow);
        err("H310501", s, DateError::EraOverflow);
        err("X050101", s, DateError::UnknownEra);
        err("h050101", s, DateError::UnknownEra);
        err("H050231", s, DateError::NotACalendarDate);
        for bad in ["H05010", "H0501011", "HH50101", "4050101", " H05010", "Ｈ050101", "H０50101", "平成050101"] {
            err(bad, s, DateError::Malformed);
        }
    }

    #[test]
    fn wareki_kanji() {
        let s = DateStyle::WarekiKanji;
        ok("令和7年4月1日", s, ymd(2025, 4, 1));
        ok("令和元年5月1日", s, ymd(2019, 5, 1));
        ok("令和1年5月1日", s, ymd(2019, 5, 1));
        ok("令和01年05月01日", s, ymd(2019, 5, 1));
        ok("平成5年1月1日", s, ymd(1993, 1, 1));
        ok("平成05年01月01日", s, ymd(1993, 1, 1));
        ok("令和７年４月１日", s, ymd(2025, 4, 1));
        ok("令和０７年０４月０１日", s, ymd(2025, 4, 1));
        ok("令和元年１２月３１日", s, ymd(2019, 12, 31));
        ok("平成１0年1２月0１日", s, ymd(1998, 12, 1)); // mixed widths are tolerated
        ok("明治元年1月25日", s, ymd(1868, 1, 25));
        ok("昭和64年1月7日", s, ymd(1989, 1, 7));
        ok("平成31年4月30日", s, ymd(2019, 4, 30));
        err("昭和64年1月8日", s, DateError::EraOverflow);
        err("平成31年5月1日", s, DateError::EraOverflow);
        err("大正15年12月25日", s, DateError::EraOverflow);
        err("平成元年1月7日", s, DateError::BeforeEraStart);
        err("令和元年4月30日", s, DateError::BeforeEraStart);
        err("令和0年5月1日", s, DateError::BeforeEraStart);
        err("明治元年1月24日", s, DateError::BeforeEraStart);
        err("大化元年1月1日", s, DateError::UnknownEra);
        err("令和元5年1月1日", s, DateError::UnknownEra); // name would be 令和元
        err("令和元元年5月1日", s, DateError::UnknownEra);
        err("H5年1月1日", s, DateError::UnknownEra);
        err("令和7年4月31日", s, DateError::NotACalendarDate);
        err("令和7年13月1日", s, DateError::NotACalendarDate);
        err("令和7年0月1日", s, DateError::NotACalendarDate);
        err("令和7年4月0日", s, DateError::NotACalendarDate);
        for bad in [
            "令和123年1月1日",
            "令和7年4月1",
            "令和7年4月1日 ",
            " 令和7年4月1日",
            "令和 7年4月1日",
            "　令和7年4月1日",
            "令和年4月1日",
            "7年4月1日",
            "令和7年4月",
            "令和7年元月1日",
            "令和7年004月1日",
            "令和7年4月001日",
            "令和7-4-1",
            "令和7年4月1日日",
            "令和元年",
            "令和\t7年4月1日",
            "R070401",
            "4050101",
            "0000000",
            "9999999",
            "元年5月1日",
        ] {
            err(bad, s, DateError::Malformed);
        }
    }

    #[test]
    fn wareki_any_detects_the_spelling() {
        let s = DateStyle::WarekiAny;
        for text in ["4050101", "H050101", "平成5年1月1日", "平成５年１月１日", "平成05年01月01日"] {
            ok(text, s, ymd(1993, 1, 1));
        }
        ok("令和元年5月1日", s, ymd(2019, 5, 1));
        err("平成31年5月1日", s, DateError::EraOverflow);
        err("H310501", s, DateError::EraOverflow);
        err("4310501", s, DateError::EraOverflow);
        err("R010430", s, DateError::BeforeEraStart);
        err("8050101", s, DateError::UnknownEra);
        err("Q050101", s, DateError::UnknownEra);
        for bad in ["20260401", "2026-04-01", "H5年1月1日", " 4050101", "４０５０１０１", "-"] {
            err(bad, s, DateError::Malformed);
        }
    }

    // ---------------------------------------------------------------- null conventions

    #[test]
    fn blanks_are_null_in_every_style() {
        for style in DateStyle::ALL {
            for blank in ["", " ", "        ", "\u{3000}", "\u{3000}\u{3000}\u{3000}", " \u{3000} "] {
                assert_eq!(parse(blank, style), Ok(None), "{blank:?} as {style}");
                assert_eq!(parse_end(blank, style), Ok(None), "{blank:?} as {style}");
            }
            for not_blank in ["\t", "\u{a0}", " \n", "_"] {
                assert_eq!(parse(not_blank, style), Err(DateError::Malformed), "{not_blank:?} as {style}");
            }
        }
    }

    #[test]
    fn all_zeros_are_null() {
        let cases = [
            (DateStyle::Yyyymmdd, "00000000"),
            (DateStyle::Yyyymm, "000000"),
            (DateStyle::Iso, "0000-00-00"),
            (DateStyle::Wareki7, "0000000"),
            (DateStyle::WarekiLetter, "0000000"),
            (DateStyle::WarekiAny, "0000000"),
        ];
        for (style, zeros) in cases {
            assert_eq!(parse(zeros, style), Ok(None), "{zeros:?} as {style}");
            assert_eq!(parse_end(zeros, style), Ok(None), "{zeros:?} as {style}");
        }
        // Zeros of another width are not null.
        err("0000000", DateStyle::Yyyymmdd, DateError::Malformed);
        err("000000000", DateStyle::Yyyymmdd, DateError::Malformed);
        err("00000000", DateStyle::Wareki7, DateError::Malformed);
        err("00000000", DateStyle::Yyyymm, DateError::Malformed);
        err("00000000", DateStyle::Iso, DateError::Malformed);
        err("０００００００", DateStyle::WarekiAny, DateError::Malformed);
    }

    #[test]
    fn all_nines_only_end_a_period() {
        let cases = [(DateStyle::Yyyymmdd, "99999999"), (DateStyle::Yyyymm, "999999"), (DateStyle::Iso, "9999-99-99")];
        // 和暦 has no all-nines convention (SPEC §4.7 names the 8-digit form only).
        for style in [DateStyle::Wareki7, DateStyle::WarekiAny] {
            assert_eq!(parse_end("9999999", style), Err(DateError::UnknownEra), "{style}");
        }
        assert_eq!(parse_end("9999999", DateStyle::WarekiLetter), Err(DateError::Malformed));
        for (style, nines) in cases {
            assert_eq!(parse_end(nines, style), Ok(None), "{nines:?} as {style}");
            assert_eq!(parse(nines, style), Err(DateError::OpenEndNotAllowed), "{nines:?} as {style}");
        }
        err("9999999", DateStyle::Yyyymmdd, DateError::Malformed);
        err("99999999", DateStyle::Wareki7, DateError::Malformed);
        err("99999999", DateStyle::Yyyymm, DateError::Malformed);
        err("999999", DateStyle::Wareki7, DateError::Malformed);
        err("99999998", DateStyle::Yyyymmdd, DateError::NotACalendarDate);
        err("9999998", DateStyle::Wareki7, DateError::UnknownEra);
    }

    // ---------------------------------------------------------------- formatting, errors, styles

    #[test]
    fn format_examples() {
        let f = |d: NaiveDate, s: DateStyle| TABLE.format(d, s);
        let d = ymd(1993, 1, 1);
        assert_eq!(f(d, DateStyle::Wareki7).as_deref(), Some("4050101"));
        assert_eq!(f(d, DateStyle::WarekiLetter).as_deref(), Some("H050101"));
        assert_eq!(f(d, DateStyle::WarekiKanji).as_deref(), Some("平成5年1月1日"));
        assert_eq!(f(d, DateStyle::WarekiAny).as_deref(), Some("平成5年1月1日"));
        assert_eq!(f(d, DateStyle::Yyyymmdd).as_deref(), Some("19930101"));
        assert_eq!(f(d, DateStyle::Yyyymm).as_deref(), Some("199301"));
        assert_eq!(f(d, DateStyle::Iso).as_deref(), Some("1993-01-01"));
        assert_eq!(f(ymd(2019, 5, 1), DateStyle::WarekiKanji).as_deref(), Some("令和元年5月1日"));
        assert_eq!(f(ymd(2019, 5, 1), DateStyle::Wareki7).as_deref(), Some("5010501"));
        assert_eq!(f(ymd(2025, 4, 1), DateStyle::WarekiLetter).as_deref(), Some("R070401"));
        assert_eq!(f(ymd(1868, 1, 24), DateStyle::Wareki7), None);
        assert_eq!(f(ymd(1868, 1, 24), DateStyle::Yyyymmdd).as_deref(), Some("18680124"));
        assert_eq!(f(ymd(2118, 1, 1), DateStyle::Wareki7), None); // 令和100年
        assert_eq!(f(ymd(2117, 12, 31), DateStyle::WarekiKanji).as_deref(), Some("令和99年12月31日"));
        assert_eq!(f(ymd(10000, 1, 1), DateStyle::Yyyymmdd), None);
        assert_eq!(f(ymd(0, 1, 1), DateStyle::Iso), None);
    }

    #[test]
    fn error_descriptions() {
        let all = [
            DateError::Malformed,
            DateError::NotACalendarDate,
            DateError::UnknownEra,
            DateError::EraOverflow,
            DateError::BeforeEraStart,
            DateError::OpenEndNotAllowed,
        ];
        let mut seen = std::collections::HashSet::new();
        for e in all {
            assert!(!e.describe().is_empty());
            assert!(e.describe().is_ascii());
            assert_eq!(e.to_string(), e.describe());
            assert!(seen.insert(e.describe()), "duplicate description {:?}", e.describe());
        }
    }

    #[test]
    fn style_names() {
        for (name, style) in [
            ("yyyymmdd", DateStyle::Yyyymmdd),
            ("yyyymm", DateStyle::Yyyymm),
            ("iso", DateStyle::Iso),
            ("wareki7", DateStyle::Wareki7),
            ("wareki_letter", DateStyle::WarekiLetter),
            ("wareki_kanji", DateStyle::WarekiKanji),
            ("wareki", DateStyle::WarekiAny),
        ] {
            assert_eq!(name.parse::<DateStyle>(), Ok(style));
            assert_eq!(style.to_string(), name);
        }
        for bad in ["", "YYYYMMDD", "wareki_any", " iso", "iso ", "date"] {
            assert_eq!(bad.parse::<DateStyle>(), Err(UnknownDateStyle(bad.to_string())));
        }
    }

    #[test]
    fn date32_conversions() {
        assert_eq!(to_date32(ymd(1970, 1, 1)), 0);
        assert_eq!(to_date32(ymd(1970, 1, 2)), 1);
        assert_eq!(to_date32(ymd(1969, 12, 31)), -1);
        assert_eq!(to_date32(ymd(2000, 3, 1)), 11_017);
        assert_eq!(to_date32(NaiveDate::MAX), (NaiveDate::MAX - ymd(1970, 1, 1)).num_days() as i32);
        assert_eq!(to_date32(NaiveDate::MIN), (NaiveDate::MIN - ymd(1970, 1, 1)).num_days() as i32);
        assert_eq!(from_date32(0), Some(ymd(1970, 1, 1)));
        assert_eq!(from_date32(to_date32(NaiveDate::MAX)), Some(NaiveDate::MAX));
        assert_eq!(from_date32(to_date32(NaiveDate::MIN)), Some(NaiveDate::MIN));
        assert_eq!(from_date32(to_date32(NaiveDate::MAX) + 1), None);
        assert_eq!(from_date32(to_date32(NaiveDate::MIN) - 1), None);
        assert_eq!(from_date32(i32::MAX), None);
        assert_eq!(from_date32(i32::MIN), None);
        assert_eq!(parse("20260401", DateStyle::Yyyymmdd), Ok(Some(ymd(2026, 4, 1))));
        assert_eq!(
            parse_date("20260401", DateStyle::Yyyymmdd, false, &TABLE),
            Ok(Some((ymd(2026, 4, 1) - ymd(1970, 1, 1)).num_days() as i32))
        );
    }

    /// Every day from 40 days before to 40 days after each era boundary, in all three spellings.
    #[test]
    fn every_day_around_every_boundary() {
        let eras = TABLE.eras();
        for (i, new) in eras.iter().enumerate() {
            for offset in -40i64..=40 {
                let date = shifted(new.first_day, offset);
                check_boundary_day(i, date, false, false, true);
                check_boundary_day(i, date, true, true, false);
            }
        }
    }

    fn shifted(day: NaiveDate, offset: i64) -> NaiveDate {
        let magnitude = Days::new(offset.unsigned_abs());
        if offset < 0 { day - magnitude } else { day + magnitude }
    }

    /// `date` lies near the first day of era `i`: it parses in the era it belongs to and is an
    /// error in the other era of the boundary.
    fn check_boundary_day(i: usize, date: NaiveDate, full_width: bool, pad: bool, gannen: bool) {
        let eras = TABLE.eras();
        let new = &eras[i];
        let previous = i.checked_sub(1).map(|p| &eras[p]);
        let days = to_date32(date);
        for style in WAREKI_SPELLINGS {
            let in_new = spell(new, date, style, full_width, pad, gannen);
            let in_previous = previous.map(|p| spell(p, date, style, full_width, pad, gannen));
            if date >= new.first_day {
                assert_eq!(parse_date(&in_new, style, false, &TABLE), Ok(Some(days)), "{in_new}");
                assert_eq!(parse_date(&in_new, DateStyle::WarekiAny, false, &TABLE), Ok(Some(days)), "{in_new}");
                if let Some(text) = in_previous {
                    assert_eq!(parse_date(&text, style, false, &TABLE), Err(DateError::EraOverflow), "{text}");
                    assert_eq!(parse_date(&text, DateStyle::WarekiAny, false, &TABLE), Err(DateError::EraOverflow), "{text}");
                }
            } else {
                assert_eq!(parse_date(&in_new, style, false, &TABLE), Err(DateError::BeforeEraStart), "{in_new}");
                assert_eq!(parse_date(&in_new, DateStyle::WarekiAny, false, &TABLE), Err(DateError::BeforeEraStart), "{in_new}");
                if let Some(text) = in_previous {
                    assert_eq!(parse_date(&text, style, false, &TABLE), Ok(Some(days)), "{text}");
                    assert_eq!(parse_date(&text, DateStyle::WarekiAny, false, &TABLE), Ok(Some(days)), "{text}");
                }
            }
        }
    }

    // ---------------------------------------------------------------- properties

    const FIRST_ERA_DAY: (i32, u32, u32) = (1868, 1, 25);

    fn date_strategy() -> impl Strategy<Value = NaiveDate> {
        let (y, m, d) = FIRST_ERA_DAY;
        let low = to_date32(ymd(y, m, d));
        let high = to_date32(ymd(2100, 12, 31));
        (low..=high).prop_map(|days| from_date32(days).expect("in range"))
    }

    fn style_strategy() -> impl Strategy<Value = DateStyle> {
        prop::sample::select(DateStyle::ALL.to_vec())
    }

    /// Strings near the accepted shapes, to reach the deeper branches.
    fn date_like_string() -> impl Strategy<Value = String> {
        let alphabet: Vec<char> =
            "0123456789０１２３４５６７８９年月日元-/ \u{3000}MTSHRXh令和平成昭大正明治化\u{feff}\t é".chars().collect();
        prop::collection::vec(prop::sample::select(alphabet), 0..16).prop_map(String::from_iter)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// (1) Around each era boundary, every 和暦 spelling parses in the era the day belongs
        /// to, overflows in the previous era and is before the start in the new one.
        #[test]
        fn prop_era_boundaries(
            i in 0..TABLE.eras().len(),
            offset in -40i64..=40,
            full_width: bool,
            pad: bool,
            gannen: bool,
        ) {
            let date = shifted(TABLE.eras()[i].first_day, offset);
            check_boundary_day(i, date, full_width, pad, gannen);
        }

        /// (2) format then parse gives the same date.
        #[test]
        fn prop_format_parse_round_trip(date in date_strategy(), ends_period: bool, full_width: bool) {
            let days = to_date32(date);
            for style in [
                DateStyle::Yyyymmdd,
                DateStyle::Iso,
                DateStyle::Wareki7,
                DateStyle::WarekiLetter,
                DateStyle::WarekiKanji,
                DateStyle::WarekiAny,
            ] {
                let text = TABLE.format(date, style).expect("formattable");
                prop_assert_eq!(parse_date(&text, style, ends_period, &TABLE), Ok(Some(days)), "{}", text);
                if matches!(style, DateStyle::Wareki7 | DateStyle::WarekiLetter | DateStyle::WarekiKanji) {
                    prop_assert_eq!(parse_date(&text, DateStyle::WarekiAny, ends_period, &TABLE), Ok(Some(days)), "{}", text);
                }
                if style == DateStyle::WarekiKanji && full_width {
                    let wide = to_full_width(&text);
                    prop_assert_eq!(parse_date(&wide, style, ends_period, &TABLE), Ok(Some(days)), "{}", wide);
                }
            }
            let month = TABLE.format(date, DateStyle::Yyyymm).expect("formattable");
            let first = date.with_day(1).expect("day 1");
            prop_assert_eq!(parse_date(&month, DateStyle::Yyyymm, ends_period, &TABLE), Ok(Some(to_date32(first))));
            prop_assert_eq!(TABLE.era_of(date).map(|e| e.first_day <= date), Some(true));
        }

        /// Yyyymmdd agrees with chrono for every 8-digit string.
        #[test]
        fn prop_yyyymmdd_matches_chrono(y in 0u32..=9999, m in 0u32..=99, d in 0u32..=99) {
            let text = format!("{y:04}{m:02}{d:02}");
            let got = parse_date(&text, DateStyle::Yyyymmdd, false, &TABLE);
            let expected = if (y, m, d) == (0, 0, 0) {
                Ok(None)
            } else if (y, m, d) == (9999, 99, 99) {
                Err(DateError::OpenEndNotAllowed)
            } else if y == 0 {
                Err(DateError::NotACalendarDate)
            } else {
                NaiveDate::from_ymd_opt(y as i32, m, d)
                    .map(|date| Some(to_date32(date)))
                    .ok_or(DateError::NotACalendarDate)
            };
            prop_assert_eq!(got, expected);
        }

        /// (3) parse_date never panics, on arbitrary strings, in any style.
        #[test]
        fn prop_never_panics_arbitrary(text in any::<String>(), style in style_strategy(), ends_period: bool) {
            check_result(&text, style, ends_period);
        }

        /// (3) parse_date never panics on date-like strings either.
        #[test]
        fn prop_never_panics_date_like(text in date_like_string(), style in style_strategy(), ends_period: bool) {
            check_result(&text, style, ends_period);
        }

        /// The era table reader never panics.
        #[test]
        fn prop_era_table_never_panics(text in "(name\tletter\tdigit\tfirst_day\n)?([^\n]{0,30}\n){0,4}") {
            let _ = EraTable::from_tsv(&text);
        }
    }

    /// Whatever the result, a parsed date is a representable date, and a 和暦 result lies in the
    /// table's eras.
    fn check_result(text: &str, style: DateStyle, ends_period: bool) {
        if let Ok(Some(days)) = parse_date(text, style, ends_period, &TABLE) {
            let date = from_date32(days).expect("Date32 in chrono's range");
            if matches!(style, DateStyle::Wareki7 | DateStyle::WarekiLetter | DateStyle::WarekiKanji | DateStyle::WarekiAny) {
                assert!(TABLE.era_of(date).is_some(), "{text:?} -> {date}");
            }
        }
    }
}
