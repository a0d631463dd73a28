//! 外字 tables (SPEC §4.6): user-defined characters of one municipality mapped to Unicode.
//!
//! CP932's user-defined area F040–F9FC decodes to the private use area U+E000–U+E757, so a table
//! keyed by PUA code point serves CP932 and UTF-8 sources alike: a `code` written as CP932 hex
//! (`F040`) is converted to its PUA code point when the table is read. After decoding, any PUA
//! character in a field is replaced by its mapping; one without a mapping is kept as it is and
//! reported as a warning, never dropped.

use std::collections::HashMap;

/// One mapping of a 外字 table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaijiEntry {
    /// The replacement: one or more code points (a base character and a variation selector).
    pub replacement: String,
    /// MJ図形名, when the municipality recorded one.
    pub mj_name: Option<String>,
}

/// A municipality's 外字 table, keyed by PUA code point.
#[derive(Debug, Clone, Default)]
pub struct GaijiTable {
    entries: HashMap<char, GaijiEntry>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GaijiTableError {
    #[error("line 1: the header must be `code\\tunicode\\tmj_name\\tnote`")]
    Header,
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
}

/// A PUA character that the table does not map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnmappedGaiji {
    pub code_point: char,
    /// Offset in bytes of the character within the decoded text.
    pub offset: usize,
}

/// True for a character of the BMP private use area, where CP932 user-defined characters land.
#[inline]
pub fn is_private_use(c: char) -> bool {
    ('\u{E000}'..='\u{F8FF}').contains(&c)
}

/// The PUA code point of a CP932 user-defined code F040–F9FC, or `None` outside that area.
pub fn cp932_user_defined_to_pua(code: u16) -> Option<char> {
    let lead = (code >> 8) as u8;
    let trail = (code & 0xFF) as u8;
    if !(0xF0..=0xF9).contains(&lead) {
        return None;
    }
    let t = match trail {
        0x40..=0x7E => trail - 0x40,
        0x80..=0xFC => trail - 0x41,
        _ => return None,
    };
    let index = (lead - 0xF0) as u32 * 188 + t as u32;
    char::from_u32(0xE000 + index)
}

fn parse_code_point(s: &str) -> Option<char> {
    let hex = s.strip_prefix("U+").or_else(|| s.strip_prefix("u+"))?;
    char::from_u32(u32::from_str_radix(hex, 16).ok()?)
}

impl GaijiTable {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, c: char) -> Option<&GaijiEntry> {
        self.entries.get(&c)
    }

    /// Reads the TSV form of SPEC §4.6.
    pub fn from_tsv(text: &str) -> Result<GaijiTable, GaijiTableError> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim_end_matches('\r').split('\t').collect::<Vec<_>>() == ["code", "unicode", "mj_name", "note"] => {}
            _ => return Err(GaijiTableError::Header),
        }
        let mut entries = HashMap::new();
        for (i, line) in lines {
            let line_no = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            let err = |reason: String| GaijiTableError::Line { line: line_no, reason };
            if cols.len() < 2 {
                return Err(err("expected at least the columns code and unicode".into()));
            }
            let code = cols[0].trim();
            let key = if code.starts_with("U+") || code.starts_with("u+") {
                let c = parse_code_point(code).ok_or_else(|| err(format!("`{code}` is not a code point")))?;
                if !is_private_use(c) {
                    return Err(err(format!("`{code}` is not in the private use area U+E000–U+F8FF")));
                }
                c
            } else {
                let v = u16::from_str_radix(code, 16).map_err(|_| err(format!("`{code}` is neither CP932 hex nor U+XXXX")))?;
                cp932_user_defined_to_pua(v).ok_or_else(|| err(format!("`{code}` is outside the CP932 user-defined area F040–F9FC")))?
            };
            let mut replacement = String::new();
            for cp in cols[1].split_whitespace() {
                replacement.push(parse_code_point(cp).ok_or_else(|| err(format!("`{cp}` is not a code point (U+XXXX)")))?);
            }
            if replacement.is_empty() {
                return Err(err("the unicode column is empty".into()));
            }
            let mj_name = cols.get(2).map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
            if entries.insert(key, GaijiEntry { replacement, mj_name }).is_some() {
                return Err(err(format!("`{code}` is mapped twice")));
            }
        }
        Ok(GaijiTable { entries })
    }

    /// Replaces mapped PUA characters in `text` (from `start` on) in place, and reports the ones
    /// without a mapping, which stay in the text.
    pub fn apply(&self, text: &mut String, start: usize, unmapped: &mut Vec<UnmappedGaiji>) {
        // PUA characters are encoded as EE 80 80 – EF A3 BF in UTF-8: skip the scan otherwise.
        if memchr::memchr2(0xEE, 0xEF, &text.as_bytes()[start..]).is_none() {
            return;
        }
        if !text[start..].chars().any(is_private_use) {
            return;
        }
        let tail: String = text[start..].to_string();
        text.truncate(start);
        for c in tail.chars() {
            if is_private_use(c) {
                match self.entries.get(&c) {
                    Some(e) => text.push_str(&e.replacement),
                    None => {
                        unmapped.push(UnmappedGaiji { code_point: c, offset: text.len() - start });
                        text.push(c);
                    }
                }
            } else {
                text.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "code\tunicode\tmj_name\tnote\nF040\tU+845B U+E0100\tMJ012345\t葛 with IVS\nU+E001\tU+9AD9\t\t髙\n";

    #[test]
    fn cp932_user_area_maps_to_pua() {
        assert_eq!(cp932_user_defined_to_pua(0xF040), Some('\u{E000}'));
        assert_eq!(cp932_user_defined_to_pua(0xF07E), Some('\u{E03E}'));
        assert_eq!(cp932_user_defined_to_pua(0xF080), Some('\u{E03F}'));
        assert_eq!(cp932_user_defined_to_pua(0xF9FC), Some('\u{E757}'));
        assert_eq!(cp932_user_defined_to_pua(0xEF40), None);
        // Agrees with the decoder.
        let mut s = String::new();
        crate::codec::cp932::decode_field(b"\xF9\xFC\xF0\x80", &mut s).unwrap();
        assert_eq!(s, "\u{E757}\u{E03F}");
    }

    #[test]
    fn applies_mappings_and_reports_unmapped() {
        let t = GaijiTable::from_tsv(TABLE).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get('\u{E000}').unwrap().mj_name.as_deref(), Some("MJ012345"));
        let mut s = String::from("prefix|山\u{E000}\u{E001}\u{E002}");
        let mut un = Vec::new();
        t.apply(&mut s, 7, &mut un);
        assert_eq!(s, "prefix|山葛\u{E0100}髙\u{E002}");
        assert_eq!(un.len(), 1);
        assert_eq!(un[0].code_point, '\u{E002}');
    }

    #[test]
    fn rejects_bad_tables() {
        assert_eq!(GaijiTable::from_tsv("a\tb\n").unwrap_err(), GaijiTableError::Header);
        let bad = "code\tunicode\tmj_name\tnote\nE040\tU+845B\t\t\n";
        assert!(matches!(GaijiTable::from_tsv(bad), Err(GaijiTableError::Line { line: 2, .. })));
        let dup = "code\tunicode\tmj_name\tnote\nF040\tU+845B\t\t\nU+E000\tU+845B\t\t\n";
        assert!(matches!(GaijiTable::from_tsv(dup), Err(GaijiTableError::Line { line: 3, .. })));
    }
}
