//! カナ氏名: kept as given (`name_kana_raw`) and NFKC-normalised (`name_kana`).
//!
//! NFKC turns half-width katakana into full-width with combined voiced marks (`ｶﾞ` → `ガ`), and
//! full-width ASCII into ASCII; that is the form the platform searches on.

use unicode_normalization::UnicodeNormalization;

/// Appends the NFKC form of `text` to `out`.
pub fn nfkc_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        out.push_str(text);
    } else {
        out.extend(text.nfkc());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_width_kana_with_marks_become_full_width() {
        let mut s = String::new();
        nfkc_into("ﾔﾏﾀﾞ ﾀﾛｳ ﾎﾟﾝ", &mut s);
        assert_eq!(s, "ヤマダ タロウ ポン");
    }
}
