//! Check digits of the identifiers of the 介護保険 domain (facts in `reference/codes.md`).
//!
//! Every function takes the identifier as written (ASCII digits, no separators) and returns false
//! for a value of the wrong length or with a non-digit, so a rule needs no separate shape test.

fn digits(s: &str, len: usize) -> Option<&[u8]> {
    let b = s.as_bytes();
    (b.len() == len && b.iter().all(u8::is_ascii_digit)).then_some(b)
}

/// Modulus 10, weights 2,1,2,1,… from the right over `body`; the digits of each product are
/// added; check = (10 − sum mod 10) mod 10.
fn modulus10(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let p = u32::from(d - b'0') * if i % 2 == 0 { 2 } else { 1 };
            p / 10 + p % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn modulus10_valid(s: &str, len: usize) -> bool {
    digits(s, len).is_some_and(|b| modulus10(&b[..len - 1]) == b[len - 1] - b'0')
}

/// 全国地方公共団体コード (6 digits): modulus 11 over the first five digits with weights
/// 6,5,4,3,2; check = 11 − (sum mod 11), where 10 → 0 and 11 → 1.
pub fn local_government_code_valid(s: &str) -> bool {
    let Some(b) = digits(s, 6) else { return false };
    let sum: u32 = b[..5].iter().zip([6u32, 5, 4, 3, 2]).map(|(d, w)| u32::from(d - b'0') * w).sum();
    let check = match 11 - sum % 11 {
        10 => 0,
        11 => 1,
        c => c,
    };
    check == u32::from(b[5] - b'0')
}

/// 介護保険 保険者番号 (6 digits), believed to follow the 医療保険 保険者番号 modulus-10 rule. Not
/// confirmed by a public specification, so rules use it for warnings only.
pub fn insurer_no_valid(s: &str) -> bool {
    modulus10_valid(s, 6)
}

/// 介護保険事業所番号 (10 digits): modulus 10.
pub fn office_no_valid(s: &str) -> bool {
    modulus10_valid(s, 10)
}

/// 公費負担者番号 (8 digits: 法別 2 + prefecture 2 + body 3 + check 1): modulus 10.
pub fn public_payer_no_valid(s: &str) -> bool {
    modulus10_valid(s, 8)
}

/// The check digit that makes `body` valid under modulus 10 (for generators and tests).
pub fn modulus10_check_digit(body: &str) -> Option<char> {
    body.bytes().all(|b| b.is_ascii_digit()).then(|| char::from(b'0' + modulus10(body.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn local_government_codes_of_the_reference() {
        for ok in ["131016", "011002", "182079"] {
            assert!(local_government_code_valid(ok), "{ok}");
        }
        for bad in ["131011", "011003", "18207", "18207a", "1820790", ""] {
            assert!(!local_government_code_valid(bad), "{bad}");
        }
    }

    #[test]
    fn insurer_numbers() {
        // 141309 (the demo insurer) and 千代田区 131011 follow the rule.
        assert!(insurer_no_valid("141309"));
        assert!(insurer_no_valid("131011"));
        assert!(!insurer_no_valid("141308"));
        assert!(!insurer_no_valid("14130"));
    }

    #[test]
    fn office_and_public_payer_numbers() {
        let body = "131234567";
        let office = format!("{body}{}", modulus10_check_digit(body).unwrap());
        assert!(office_no_valid(&office));
        let wrong = format!("{body}{}", (modulus10_check_digit(body).unwrap() as u8 - b'0' + 1) % 10);
        assert!(!office_no_valid(&wrong));
        assert!(!office_no_valid("123456789"));
        let payer = format!("1213001{}", modulus10_check_digit("1213001").unwrap());
        assert!(public_payer_no_valid(&payer));
        assert!(!public_payer_no_valid("12130010x"));
    }

    proptest! {
        /// Exactly one last digit makes a body valid, and any single-digit change of a valid
        /// number is caught (the property a modulus-10 check exists for).
        #[test]
        fn modulus10_catches_single_digit_errors(body in "[0-9]{9}", pos in 0usize..10, delta in 1u8..10) {
            let check = modulus10_check_digit(&body).unwrap();
            let valid = format!("{body}{check}");
            prop_assert!(office_no_valid(&valid));
            let mut b = valid.into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(!office_no_valid(&changed));
        }
    }
}
