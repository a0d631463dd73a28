#!/usr/bin/env python3
"""Writes the generic 21-column CP932 CSV of the end-to-end benchmark.

A 被保険者台帳 export as a municipal vendor system writes it: a header row of Japanese column
names, CRLF line ends, CP932, half-width カナ and kanji names, 10-digit IDs, YYYYMMDD dates, a
phone number and a household number that kiban declares but does not store. The data is valid
(codes, ages against 被保険者区分, periods), so every tool converts every row and kiban's
validation has nothing to quarantine: the comparison is of speed on equal output.

usage: gen_generic.py OUT.csv ROWS [SEED] [--change FRACTION]
  --change: write the second version of the same rows: FRACTION of them changed, a third each
  deleted, updated (address and postal code) and inserted (after a kept row), over the whole file.
"""
import sys
import numpy as np

SURNAMES = [("佐藤", "ｻﾄｳ"), ("鈴木", "ｽｽﾞｷ"), ("高橋", "ﾀｶﾊｼ"), ("田中", "ﾀﾅｶ"), ("伊藤", "ｲﾄｳ"),
            ("渡辺", "ﾜﾀﾅﾍﾞ"), ("山本", "ﾔﾏﾓﾄ"), ("中村", "ﾅｶﾑﾗ"), ("小林", "ｺﾊﾞﾔｼ"), ("加藤", "ｶﾄｳ"),
            ("吉田", "ﾖｼﾀﾞ"), ("山田", "ﾔﾏﾀﾞ"), ("佐々木", "ｻｻｷ"), ("山口", "ﾔﾏｸﾞﾁ"), ("松本", "ﾏﾂﾓﾄ"),
            ("井上", "ｲﾉｳｴ"), ("木村", "ｷﾑﾗ"), ("斎藤", "ｻｲﾄｳ"), ("清水", "ｼﾐｽﾞ"), ("山崎", "ﾔﾏｻﾞｷ"),
            ("長谷川", "ﾊｾｶﾞﾜ"), ("石川", "ｲｼｶﾜ"), ("小川", "ｵｶﾞﾜ"), ("後藤", "ｺﾞﾄｳ"), ("岡田", "ｵｶﾀﾞ"),
            ("髙橋", "ﾀｶﾊｼ"), ("渡邉", "ﾜﾀﾅﾍﾞ"), ("齋藤", "ｻｲﾄｳ"), ("﨑山", "ｻｷﾔﾏ"), ("德永", "ﾄｸﾅｶﾞ")]
GIVEN_M = [("太郎", "ﾀﾛｳ"), ("一郎", "ｲﾁﾛｳ"), ("健", "ｹﾝ"), ("誠", "ﾏｺﾄ"), ("茂", "ｼｹﾞﾙ"),
           ("博", "ﾋﾛｼ"), ("清", "ｷﾖｼ"), ("勇", "ｲｻﾑ"), ("正雄", "ﾏｻｵ"), ("義男", "ﾖｼｵ")]
GIVEN_F = [("花子", "ﾊﾅｺ"), ("幸子", "ｻﾁｺ"), ("節子", "ｾﾂｺ"), ("和子", "ｶｽﾞｺ"), ("恵子", "ｹｲｺ"),
           ("洋子", "ﾖｳｺ"), ("京子", "ｷｮｳｺ"), ("美智子", "ﾐﾁｺ"), ("ヨシ", "ﾖｼ"), ("キヨ", "ｷﾖ")]
TOWNS = ["横浜市中区山下町", "横浜市西区みなとみらい", "横浜市港北区日吉本町", "川崎市川崎区駅前本町",
         "相模原市緑区橋本", "横須賀市本町", "藤沢市鵠沼海岸", "平塚市紅谷町", "鎌倉市雪ノ下", "小田原市栄町"]
ZEN = "０１２３４５６７８９"
HEADER = ["保険者番号", "被保険者番号", "履歴番号", "カナ氏名", "漢字氏名", "生年月日", "性別", "郵便番号", "住所",
          "被保険者区分", "資格取得年月日", "取得事由", "資格喪失年月日", "喪失事由", "住所地特例区分",
          "施設所在保険者番号", "住所地特例適用開始年月日", "住所地特例適用終了年月日", "被保険者証交付年月日",
          "電話番号", "世帯番号"]
INSURER = "141309"
EPOCH = np.datetime64("1970-01-01")


def ymd(days):
    """YYYYMMDD strings of day numbers since 1970-01-01."""
    return np.char.replace(np.datetime_as_string(EPOCH + days.astype("timedelta64[D]"), unit="D"), "-", "")


def zen(n):
    return "".join(ZEN[int(c)] for c in str(n))


def person_columns(ids, rng, salt):
    n = len(ids)
    sex = rng.integers(1, 3, n)
    sur = rng.integers(0, len(SURNAMES), n)
    giv = rng.integers(0, 10, n)
    # 第1号 (65+) mostly, 第2号 (40–64) some.
    cat = np.where(rng.random(n) < 0.85, 1, 2)
    start = np.datetime64("2000-04-01").astype(int)
    birth = np.where(cat == 1, rng.integers(np.datetime64("1925-01-01").astype(int), np.datetime64("1960-12-31").astype(int), n),
                     rng.integers(np.datetime64("1962-01-01").astype(int), np.datetime64("1985-12-31").astype(int), n))
    b = (EPOCH + birth.astype("timedelta64[D]")).astype("datetime64[D]")
    years = np.where(cat == 1, 65, 40)
    y = b.astype("datetime64[Y]").astype(int) + 1970 + years
    md = (b - b.astype("datetime64[Y]")).astype(int)
    # The birthday at 65 (40), a day late when the birth year is not a leap year and that year is:
    # never early, so the age on the day after acquisition is always reached.
    turn = (np.array([f"{yy:04d}" for yy in y], dtype="datetime64[Y]").astype("datetime64[D]") + md).astype(int) + 1
    acq = np.maximum(turn, start) + rng.integers(0, 30, n)
    reason = np.where(turn >= start, "002", np.where(rng.random(n) < 0.5, "001", "006"))
    lost = rng.random(n) < 0.03
    loss = acq + rng.integers(1, 3000, n)
    special = rng.random(n) < 0.02
    sp_from = acq + rng.integers(0, 200, n)
    sp_to = sp_from + rng.integers(30, 900, n)
    issue = acq + rng.integers(0, 20, n)
    town = rng.integers(0, len(TOWNS), n)
    block = rng.integers(1, 30, (n, 3))
    postal = rng.integers(2200000, 2599999, n)
    phone = rng.integers(0, 10_000_0000, n)
    household = rng.integers(1, 9_999_999_999, n)
    birth_s, acq_s, loss_s, spf_s, spt_s, issue_s = (ymd(a).tolist() for a in (birth, acq, loss, sp_from, sp_to, issue))
    rows = []
    for i in range(n):
        s = int(sex[i])
        kanji_g, kana_g = (GIVEN_M if s == 1 else GIVEN_F)[int(giv[i])]
        kanji_s, kana_s = SURNAMES[int(sur[i])]
        bl = block[i]
        addr = f"神奈川県{TOWNS[int(town[i])]}{zen(bl[0])}－{zen(bl[1])}－{zen(bl[2])}"
        is_lost, is_sp = bool(lost[i]), bool(special[i])
        p = int(phone[i])
        rows.append([INSURER, f"{ids[i]:010d}", "1", f"{kana_s} {kana_g}", f"{kanji_s}　{kanji_g}", birth_s[i], str(s),
                     f"{int(postal[i]) + salt:07d}"[-7:], addr, str(int(cat[i])), acq_s[i], str(reason[i]),
                     loss_s[i] if is_lost else "", "202" if is_lost else "", "2" if is_sp else "1",
                     "141002" if is_sp else "", spf_s[i] if is_sp else "", spt_s[i] if is_sp else "", issue_s[i],
                     f"045-{p // 10000 % 1000:03d}-{p % 10000:04d}", f"{int(household[i]):010d}"])
    return rows


def quote(v):
    return f'"{v}"' if v and not v.isascii() else v


def write(path, rows):
    with open(path, "wb") as f:
        f.write((",".join(HEADER) + "\r\n").encode("cp932"))
        buf = []
        for r in rows:
            buf.append(",".join(quote(v) for v in r))
            if len(buf) >= 65536:
                f.write(("\r\n".join(buf) + "\r\n").encode("cp932"))
                buf = []
        if buf:
            f.write(("\r\n".join(buf) + "\r\n").encode("cp932"))


def generate(rows_wanted, seed):
    rng = np.random.default_rng(seed)
    ids = np.arange(1, rows_wanted + 1, dtype=np.int64) * 2
    out = []
    for lo in range(0, rows_wanted, 200_000):
        out.extend(person_columns(ids[lo:lo + 200_000], rng, 0))
    return out


def change(rows, fraction, seed):
    """Deletes, updates and inserts `fraction`/3 of the rows each, keyed by 被保険者番号."""
    rng = np.random.default_rng(seed + 1)
    n = len(rows)
    fate = rng.random(n)
    p = fraction / 3.0
    inserted = person_columns(np.array([int(r[1]) + 1 for r, f in zip(rows, fate) if 2 * p <= f < 3 * p], dtype=np.int64), rng, 17)
    out, k = [], 0
    for r, f in zip(rows, fate):
        if f < p:
            continue
        if f < 2 * p:
            r = list(r)
            r[7] = f"{(int(r[7]) + 1) % 10_000_000:07d}"
            r[8] = r[8] + "－１０１"
        out.append(r)
        if 2 * p <= f < 3 * p:
            out.append(inserted[k])
            k += 1
    return out


def main():
    args = sys.argv[1:]
    changed = None
    if "--change" in args:
        i = args.index("--change")
        changed = float(args[i + 1])
        del args[i:i + 2]
    path, n = args[0], int(args[1])
    seed = int(args[2]) if len(args) > 2 else 7
    rows = generate(n, seed)
    if changed:
        rows = change(rows, changed, seed)
    write(path, rows)


if __name__ == "__main__":
    main()
