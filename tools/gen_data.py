#!/usr/bin/env python3
"""Generates schemas/*.toml, mappings/*.toml and mappings/codes/*.tsv from ../shared/reference.

Run once when the reference changes; the outputs are committed and are what kiban reads.
"""
import csv, os, sys
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, '..', 'shared', 'reference')
if len(sys.argv) > 1: REF = sys.argv[1]

def tsv(name):
    with open(os.path.join(REF, name), encoding='utf-8') as f:
        return list(csv.DictReader(f, delimiter='\t'))

def q(s): return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'

# ---------------------------------------------------------------- schemas
IDS = [("insurer_no", "utf8", "保険者番号", "digits:6"), ("insured_no", "utf8", "被保険者番号", "chars:10")]
CERT_KEY = IDS + [("application_date", "date32", "認定申請日", None), ("branch_no", "int32", "枝番", None)]
VF = ("valid_from", "date32", "適用開始年月日", None)
def col(name, ty, label, shape=None): return (name, ty, label, shape)
SETS = {
 "insured_person": ("被保険者 (資格)", "被保険者台帳 from the vendor's fixed-width extract (SPEC §4.3). Snapshot source.",
   IDS + [col("history_no", "int32", "履歴番号")], [
   col("name_kana_raw","utf8","カナ氏名 (原文)"), col("name_kana","utf8","カナ氏名 (NFKC)"), col("name_kanji","utf8","漢字氏名"),
   col("birth_date","date32","生年月日"), col("sex","utf8","性別"), col("postal_code","utf8","郵便番号"), col("address","utf8","住所"),
   col("insured_category","utf8","被保険者区分"), col("acquisition_date","date32","資格取得年月日"), col("acquisition_reason","utf8","取得事由"),
   col("loss_date","date32","資格喪失年月日"), col("loss_reason","utf8","喪失事由"), col("special_address_category","utf8","住所地特例区分"),
   col("facility_insurer_no","utf8","施設所在保険者番号"), col("special_address_from","date32","住所地特例適用開始年月日"),
   col("special_address_to","date32","住所地特例適用終了年月日"), col("certificate_issue_date","date32","被保険者証交付年月日")]),
 "recipient": ("受給者 (要介護度・認定有効期間・申請中)", "One record per 異動 of the 国保連 5311 file.",
   IDS + [col("change_date","date32","異動年月日")], [
   col("change_kind","utf8","異動区分コード"), col("change_reason","utf8","異動事由"), col("wide_area_insurer_no","utf8","広域連合(政令市)保険者番号"),
   col("application_kind","utf8","申請種別コード"), col("change_application_status","utf8","変更申請中区分コード"), col("application_date","date32","申請年月日"),
   col("deemed_kind","utf8","みなし要介護区分コード"), col("care_level","utf8","要介護状態区分コード"), col("valid_from","date32","認定有効期間(開始年月日)"),
   col("valid_to","date32","認定有効期間(終了年月日)"), col("visit_limit_units","int32","訪問通所サービス支給限度基準額"),
   col("visit_limit_from","date32","訪問通所サービス上限管理適用期間開始年月日"), col("visit_limit_to","date32","訪問通所サービス上限管理適用期間終了年月日")]),
 "certification": ("要介護認定 (申請から結果まで)", "One record per certification application of the 09B interface.", CERT_KEY, [
   col("application_kind_legal","utf8","申請区分(法令)コード"), col("application_kind","utf8","申請区分(申請時)コード"), col("withdrawal_kind","utf8","取下区分コード"),
   col("insured_category","utf8","被保険者区分コード"), col("proxy_kind","utf8","申請代行区分コード"), col("birth_date","date32","生年月日"), col("age","int32","年齢"),
   col("sex","utf8","性別コード"), col("previous_result","utf8","前回の認定審査会結果"), col("previous_valid_from","date32","前回の認定有効期間(開始)"),
   col("previous_valid_to","date32","前回の認定有効期間(終了)"), col("medical_institution_no","utf8","主治医医療機関番号"), col("doctor_no","utf8","主治医番号"),
   col("opinion_requested_date","date32","意見書依頼日"), col("opinion_received_date","date32","意見書入手日"), col("survey_requested_date","date32","調査依頼日"),
   col("survey_date","date32","調査実施日"), col("survey_office_no","utf8","指定居宅介護支援事業者等番号"), col("surveyor_no","utf8","認定調査員番号"),
   col("primary_judgement_date","date32","一次判定日"), col("primary_result","utf8","一次判定結果"), col("dementia_addition","utf8","一次判定結果(認知症加算)"),
   col("standard_time","decimal128(6,1)","要介護認定等基準時間 (分)"), col("committee_material_date","date32","認定審査会資料作成日"),
   col("committee_date","date32","認定審査会予定日"), col("panel_no","utf8","合議体番号"), col("secondary_judgement_date","date32","二次判定日"),
   col("secondary_result","utf8","二次判定結果"), col("valid_from","date32","認定有効期間(開始)"), col("valid_to","date32","認定有効期間(終了)"),
   col("specified_disease","utf8","特定疾病コード"), col("state_for_care1","utf8","要介護1の場合の状態像"), col("committee_opinion","utf8","認定審査会意見等"),
   col("comment","utf8","コメント等")]),
 "certification_progress": ("認定進捗", "Where a certification stands, derived from its dates (SPEC §5.2).", CERT_KEY, [col("status","utf8","進捗状況")]),
 "certification_survey": ("認定調査票 基本調査", "The 74 基本調査 items and the two 自立度 of the 09B interface.", CERT_KEY,
   [col("item_%02d" % int(r['item_no']), "utf8", "基本調査%s %s" % (r['display_no'], r['name_ja'])) for r in tsv('survey-items-09B.tsv')] +
   [col("disability_independence","utf8","障害高齢者の日常生活自立度"), col("dementia_independence","utf8","認知症高齢者の日常生活自立度")]),
 "physician_opinion": ("主治医意見書", "Opinions of the attending physician (XML, SPEC §4.4).", CERT_KEY, [
   col("medical_institution_no","utf8","医療機関番号"), col("doctor_name","utf8","医師氏名"), col("written_on","date32","記入日"),
   col("items","list<struct<no:int32,value:utf8>>","意見書項目 (1–113)"), col("entries","list<struct<no:int32,text:utf8>>","記入項目"), col("remarks","utf8","特記事項")]),
 "copayment_ratio": ("負担割合証", "From 5311 fields 78–80 when 79 is present.", IDS + [VF], [
   col("valid_to","date32","適用終了年月日"), col("ratio","int32","利用者負担割合 (割)"), col("benefit_rate","int32","給付率 (%)")]),
 "cost_limit": ("負担限度額認定証", "From 5311 fields 48–58, 75–77 when 57 is present.", IDS + [VF], [
   col("valid_to","date32","負担限度額適用終了年月日"), col("application_status","utf8","特定入所者認定申請中区分コード"), col("service_kind","utf8","特定入所者介護サービス区分コード"),
   col("tax_special_reduction","utf8","課税層の特例減額措置対象"), col("food_limit","int32","食費負担限度額"), col("room_unit_private","int32","居住費 ユニット型個室"),
   col("room_unit_semi_private","int32","居住費 ユニット型準個室"), col("room_conventional_private_tokuyo","int32","居住費 従来型個室(特養等)"),
   col("room_conventional_private_roken","int32","居住費 従来型個室(老健・療養等)"), col("room_multi_bed","int32","居住費 多床室"),
   col("room_new_1","int32","居住費(新1)"), col("room_new_2","int32","居住費(新2)"), col("room_new_3","int32","居住費(新3)")]),
 "benefit_restriction": ("給付制限 (償還払化・給付率引下げ)", "From 5311 fields 35–38: kind reimbursement (償還払化) or reduced_benefit (給付率引下げ).",
   IDS + [col("kind","utf8","種類"), VF], [col("valid_to","date32","適用終了年月日")]),
 "care_plan_notification": ("居宅サービス計画作成依頼届出", "From 5311 fields 24–27 when 26 is present.", IDS + [VF], [
   col("valid_to","date32","適用終了年月日"), col("plan_kind","utf8","居宅サービス計画作成区分コード"), col("support_office_no","utf8","居宅介護支援事業所番号")]),
 "special_address": ("住所地特例", "From 5311 fields 71–74 when 73 is present.", IDS + [VF], [
   col("valid_to","date32","住所地特例適用終了年月日"), col("special_address_category","utf8","住所地特例対象者区分コード"), col("facility_insurer_no","utf8","施設所在保険者番号")]),
 "housing_equipment_usage": ("住宅改修費・福祉用具購入費 利用状況", "UTF-8 CSV of a standard-compliant 給付 system (SPEC §4.5).",
   IDS + [col("kind","utf8","種別"), col("decision_date","date32","支給決定日"), col("office_no","utf8","事業所番号")], [
   col("application_date","date32","支給申請日"), col("service_month","date32","サービス提供年月 (月の初日)"), col("cost_amount","int64","費用額"),
   col("benefit_amount","int64","保険給付額"), col("copay_amount","int64","利用者負担額"), col("benefit_rate","int32","給付率"),
   col("limit_reset_kind","utf8","限度額リセット区分"), col("remarks","utf8","備考")]),
}
# Coded columns (rule `<set>.<column>.code`) and the date their codes must be valid on. The tables
# are those the source layouts below declare for the fields that fill these columns.
SURVEY_PATTERNS = {"item_%02d" % int(r['item_no']): 'survey_answer_' + r['answer_pattern'] for r in tsv('survey-items-09B.tsv')}
CODED = {
 "insured_person": ("acquisition_date", {"sex": "sex", "insured_category": "insured_category", "acquisition_reason": "qualification_reason",
   "loss_reason": "qualification_reason", "special_address_category": "not_applicable_applicable"}),
 "recipient": ("change_date", {"change_kind": "change_kind", "change_reason": "change_reason", "application_kind": "recipient_application_kind",
   "change_application_status": "application_status", "deemed_kind": "deemed_kind", "care_level": "care_level"}),
 "certification": ("application_date", {"application_kind_legal": "application_kind_legal", "application_kind": "application_kind_at_filing",
   "withdrawal_kind": "withdrawal_kind", "insured_category": "insured_category", "proxy_kind": "proxy_kind", "sex": "sex",
   "dementia_addition": "dementia_addition", "specified_disease": "specified_disease", "state_for_care1": "state_for_care1"}),
 "certification_survey": ("application_date", dict(SURVEY_PATTERNS, disability_independence="disability_independence",
   dementia_independence="dementia_independence")),
 "copayment_ratio": ("valid_from", {"ratio": "copayment_ratio"}),
 "cost_limit": ("valid_from", {"application_status": "application_status", "service_kind": "service_kind_special_resident"}),
 "care_plan_notification": ("valid_from", {"plan_kind": "care_plan_kind"}),
 "special_address": ("valid_from", {"special_address_category": "not_applicable_applicable"}),
 "housing_equipment_usage": ("decision_date", {"kind": "housing_equipment_kind", "limit_reset_kind": "limit_reset_kind"}),
}
os.makedirs(os.path.join(ROOT, 'schemas'), exist_ok=True)
for name, (label, desc, key, cols) in SETS.items():
    out = ['# Record set `%s` (%s). Columns are part of the platform contract (SPEC §5.1).' % (name, label),
           '# Provenance columns (source_file, source_record, source_offset, row_hash) are added by kiban.',
           'name = %s' % q(name), 'label = %s' % q(label), 'description = %s' % q(desc),
           'key = [%s]' % ', '.join(q(k[0]) for k in key)]
    code_date, coded = CODED.get(name, (None, {}))
    if code_date: out.append('# Codes must be valid on this date (code tables carry effective dates).'); out.append('code_date = %s' % q(code_date))
    out.append('# Hand-written validation rules: schemas/%s.rules.toml.' % name)
    out.append('')
    for (cn, ty, lab, shape) in key + cols:
        out.append('[[columns]]')
        out.append('name = %s' % q(cn)); out.append('type = %s' % q(ty)); out.append('label = %s' % q(lab))
        if shape: out.append('shape = %s' % q(shape))
        if cn in coded: out.append('code_table = %s' % q(coded[cn]))
        if ty == 'date32' and (cn.endswith('_to') or cn == 'loss_date'): out.append('ends_period = true')
        if cn == 'status': out.append('nullable = false')
        out.append('')
    open(os.path.join(ROOT, 'schemas', name + '.toml'), 'w', encoding='utf-8').write('\n'.join(out))

# ---------------------------------------------------------------- code tables
CODES = {
 'care_level': ('要介護状態区分コード', [('01','非該当 (自立)','',''),('06','事業対象者','2015-04-01',''),('11','要支援 / 経過的要介護','','2009-03-31'),
   ('12','要支援1','2006-04-01',''),('13','要支援2','2006-04-01',''),('21','要介護1','',''),('22','要介護2','',''),('23','要介護3','',''),('24','要介護4','',''),('25','要介護5','',''),
   ('09','みなし非該当 (1999)','','2000-03-31'),('19','みなし要支援 (1999)','','2000-03-31')]),
 'certification_workflow_state': ('認定の処理状態 (要介護度ではない)', [('31','再調査','',''),('32','照会','',''),('88','取消','',''),('98','保留','',''),('99','なし','','')]),
 'sex': ('性別', [('1','男','',''),('2','女','','')]),
 'application_kind_at_filing': ('申請区分(申請時)', [('1','新規申請','',''),('2','更新申請','',''),('3','区分変更申請','',''),('4','職権','',''),('5','転入申請','',''),('6','資格喪失(死亡)','',''),('A','新規申請(事前)','',''),('B','更新申請(事前)','','')]),
 'application_kind_legal': ('申請区分(法令)', [('1','新規','',''),('2','更新','',''),('3','区分変更','',''),('4','職権','','')]),
 'withdrawal_kind': ('取下区分', [('1','認定申請有効','',''),('2','却下','',''),('3','取り下げ','',''),('4','区分変更却下','','')]),
 'insured_category': ('被保険者区分', [('1','第1号','',''),('2','第2号','',''),('8','生活保護','',''),('9','その他','','')]),
 'proxy_kind': ('申請届出代行区分', [('1','本人','',''),('2','家族','',''),('3','委任','',''),('4','代行','',''),('9','その他','','')]),
 'dementia_addition': ('一次判定結果(認知症加算)', [('1','なし','',''),('2','一段階の重度変更','',''),('3','二段階の重度変更','','')]),
 'stability': ('状態の安定性', [('1','安定','',''),('2','不安定','','')]),
 'estimated_benefit_kind': ('推定される給付区分', [('1','予防給付相当','',''),('2','介護給付相当','','')]),
 'state_for_care1': ('要介護1の場合の状態像', [('01','認知機能の低下等','',''),('02','不安定な状態','',''),('99','その他','','')]),
 'disability_independence': ('障害高齢者の日常生活自立度', [(str(i),l,'','') for i,l in enumerate(['自立','J1','J2','A1','A2','B1','B2','C1','C2','記載無し'],1)]),
 'dementia_independence': ('認知症高齢者の日常生活自立度', [(str(i),l,'','') for i,l in enumerate(['自立','Ⅰ','Ⅱa','Ⅱb','Ⅲa','Ⅲb','Ⅳ','M','記載無し'],1)]),
 'specified_disease': ('特定疾病 (第2号のみ)', [('%02d'%i,l,'','') for i,l in enumerate(['筋萎縮性側索硬化症','後縦靱帯骨化症','骨折を伴う骨粗鬆症','多系統萎縮症','初老期における認知症','脊髄小脳変性症','脊柱管狭窄症','早老症','糖尿病性神経障害・腎症・網膜症','脳血管疾患','パーキンソン病関連疾患','閉塞性動脈硬化症','関節リウマチ','慢性閉塞性肺疾患','両側の膝関節又は股関節に著しい変形を伴う変形性関節症','がん(末期)'],1)] + [('99','特定疾病以外','','')]),
 'care_plan_kind': ('居宅サービス計画作成区分', [('1','居宅介護支援事業所作成','',''),('2','自己作成','',''),('3','介護予防支援事業所作成','','')]),
 'qualification_reason': ('資格 異動事由', [('001','転入','',''),('002','年齢到達','',''),('006','その他取得','',''),('053','入国','',''),('054','職権取得','',''),('055','帰化','',''),('059','2号仮申請','',''),
   ('155','住所地特例解除','',''),('160','1号被保険者変更','',''),('202','死亡','',''),('203','国籍喪失','',''),('209','転出','',''),('253','その他喪失','',''),('254','適用除外','',''),('255','職権喪失','','')]),
 'suspension_kind': ('一時差止区分', [('1','一部差止','',''),('2','全部差止','','')]),
 'media_kind': ('国保連 媒体区分', [('1','伝送(ISDN)','',''),('2','MO','',''),('4','FD/CD-R','',''),('7','伝送(インターネット)','','')]),
 'nintei_interface_version': ('認定ソフト IF 識別コード', [('99A','99A','2000-04-01','2002-03-31'),('02A','02A','','2006-03-31'),('06A','06A','','2009-03-31'),('09A','09A','','2012-03-31'),('09B','09B','2012-04-01','')]),
 'change_kind': ('異動区分コード (5311)', [('1','新規','',''),('2','変更','',''),('3','終了','','')]),
 'change_reason': ('異動事由 (5311)', [('01','受給資格取得','',''),('02','受給資格喪失','',''),('03','広域連合内転居','',''),('04','合併による新規','',''),('99','その他','','')]),
 'recipient_application_kind': ('申請種別コード (5311)', [('1','新規申請','',''),('2','更新申請','',''),('3','変更申請','',''),('4','職権','','')]),
 'application_status': ('申請中区分コード (5311)', [('1','申請なし','',''),('2','申請中','',''),('3','決定済み','','')]),
 'deemed_kind': ('みなし要介護区分コード', [('1','通常の認定','',''),('2','みなし認定','','')]),
 'presence': ('有無', [('1','無し','',''),('2','有り','','')]),
 'not_applicable_applicable': ('該当区分', [('1','非該当','',''),('2','該当','','')]),
 'service_kind_special_resident': ('特定入所者介護サービス区分コード', [('1','通常の受給者','',''),('2','旧措置入所者','','')]),
 'copay_burden_kind': ('利用者負担区分コード', [('1','利用者負担','',''),('2','旧措置入所者利用者負担','','')]),
 'standard_burden_kind': ('標準負担区分コード', [('1','標準負担','',''),('2','特定標準負担','','')]),
 'copayment_ratio': ('利用者負担割合区分コード (ADAPTED)', [('1','一割','',''),('2','二割','2015-08-01',''),('3','三割','2018-08-01','')]),
 'housing_equipment_kind': ('住宅改修・福祉用具 種別', [('1','住宅改修','',''),('2','福祉用具購入','','')]),
 'limit_reset_kind': ('限度額リセット区分', [('0','なし','',''),('1','転居','',''),('2','要介護度3段階上昇','','')]),
 'benefit_rate_housing': ('給付率 (住宅改修・福祉用具)', [('90','9割','',''),('80','8割','',''),('70','7割','','')]),
}
LOOKUPS = {  # code -> value tables used to derive a column
 'copayment_benefit_rate': ('負担割合 → 保険給付率 (%)', [('1','1割','90'),('2','2割','80'),('3','3割','70')]),
}
cdir = os.path.join(ROOT, 'mappings', 'codes'); os.makedirs(cdir, exist_ok=True)
for name, (label, rows) in CODES.items():
    with open(os.path.join(cdir, name + '.tsv'), 'w', encoding='utf-8') as f:
        f.write('# %s\n' % label); f.write('code\tlabel\tvalid_from\tvalid_to\n')
        for r in rows: f.write('\t'.join(r) + '\n')
for name, (label, rows) in LOOKUPS.items():
    with open(os.path.join(cdir, name + '.tsv'), 'w', encoding='utf-8') as f:
        f.write('# %s\n' % label); f.write('code\tlabel\tvalue\n')
        for r in rows: f.write('\t'.join(r) + '\n')
pats = {}
for r in tsv('survey-answer-patterns.tsv'): pats.setdefault(r['pattern'], []).append((r['code'], r['label_ja']))
for p, rows in pats.items():
    with open(os.path.join(cdir, 'survey_answer_%s.tsv' % p), 'w', encoding='utf-8') as f:
        f.write('# 基本調査 回答パターン %s\n' % p); f.write('code\tlabel\tvalid_from\tvalid_to\n')
        for c, l in rows: f.write('%s\t%s\t\t\n' % (c, l))

# ---------------------------------------------------------------- mappings
def field_block(name, loc, ftype, label, date=None, pad=None, normalize=None, code_table=None, ends_period=False):
    out = ['[[fields]]', 'name = %s' % q(name)]
    out.append(loc)
    out.append('type = %s' % q(ftype))
    if date: out.append('date = %s' % q(date))
    if pad: out.append('pad = %s' % q(pad))
    if normalize: out.append('normalize = %s' % q(normalize))
    if code_table: out.append('code_table = %s' % q(code_table))
    if ends_period: out.append('ends_period = true')
    out.append('label = %s' % q(label)); out.append('')
    return out

# 5311
K5311 = {4:('change_date','date',None), 5:('change_kind','text','change_kind'), 6:('change_reason','text','change_reason'), 7:('insurer_no','text',None),
 8:('insured_no','text',None), 9:('name_kana','text',None), 10:('birth_date','date',None), 11:('sex','text','sex'), 12:('acquisition_date','date',None),
 13:('loss_date','date',None), 16:('wide_area_insurer_no','text',None), 17:('application_kind','text','recipient_application_kind'),
 18:('change_application_status','text','application_status'), 19:('application_date','date',None), 20:('deemed_kind','text','deemed_kind'),
 21:('care_level','text','care_level'), 22:('valid_from','date',None), 23:('valid_to','date',None), 24:('plan_kind','text','care_plan_kind'),
 25:('support_office_no','text',None), 26:('plan_valid_from','date',None), 27:('plan_valid_to','date',None), 28:('visit_limit_units','int',None),
 29:('visit_limit_from','date',None), 30:('visit_limit_to','date',None), 35:('reimbursement_from','date',None), 36:('reimbursement_to','date',None),
 37:('reduced_benefit_from','date',None), 38:('reduced_benefit_to','date',None), 48:('cost_limit_application_status','text','application_status'),
 49:('cost_limit_service_kind','text','service_kind_special_resident'), 50:('tax_special_reduction','text',None), 51:('food_limit','int',None),
 52:('room_unit_private','int',None), 53:('room_unit_semi_private','int',None), 54:('room_conventional_private_tokuyo','int',None),
 55:('room_conventional_private_roken','int',None), 56:('room_multi_bed','int',None), 57:('cost_limit_from','date',None), 58:('cost_limit_to','date',None),
 71:('special_address_category','text','not_applicable_applicable'), 72:('facility_insurer_no','text',None), 73:('special_address_from','date',None),
 74:('special_address_to','date',None), 75:('room_new_1','int',None), 76:('room_new_2','int',None), 77:('room_new_3','int',None),
 78:('copay_ratio','int','copayment_ratio'), 79:('copay_from','date',None), 80:('copay_to','date',None)}
out = ['# 国保連 受給者異動連絡票情報 (データ種別 531, record 5311), CSV in CP932 (SPEC §4.1).',
 '# Every field of a data record is declared below and decoded strictly, whether a record set uses it or not;',
 '# the [[outputs]] say which record-set columns each field fills (SPEC §5.2).',
 'name = "kokuhoren_5311"', 'label = "国保連 受給者異動連絡票 (5311)"', 'format = "csv"', 'encoding = "cp932"', 'mode = "incremental"',
 'primary_record_set = "recipient"', '', '[csv]', 'quoting = true', 'fields = 80', '',
 '# Record kinds: 1 control, 2 data, 3 end.', '[envelope]', 'kind = { field = 1 }', 'data_kind = "2"', 'data_insurer = "insurer_no"', '',
 '[envelope.header]', 'kind = "1"', 'fields = 12', 'count = { field = 4 }', 'insurer = { field = 7 }',
 'expect = [{ field = 2, value = "1" }, { field = 5, value = "531" }]',
 '# Files of one load are applied in order of 処理対象年月, ファイル管理番号, then name (SPEC §5.2).',
 'order = [{ field = 11 }, { field = 12 }]', '', '[envelope.trailer]', 'kind = "3"', 'fields = 2', '',
 '# Rows are applied in order of 異動年月日, file, record; for one key the later row wins.',
 '[apply_order]', 'date_field = "change_date"', '']
for r in tsv('kokuhoren-5311-columns.tsv'):
    n = int(r['column']); t = r['type']
    if n in K5311:
        name, ft, ct = K5311[n]
    else:
        name = 'field_%02d' % n; ft = {'date8':'date','int':'int'}.get(t, 'text'); ct = None
    if ft == 'int' and n not in K5311: ft = 'text'  # unused integer fields are not checked (SPEC §4.1 lists the record errors)
    ends = ft == 'date' and (n in (13,23,27,30,33,36,38,43,47,58,61,70,74,80))
    norm = 'insurer_no' if n == 7 else None
    out += field_block(name, 'field = %d' % n, ft, r['name_ja'], date='yyyymmdd' if ft=='date' else None, normalize=norm, code_table=ct, ends_period=ends)
def outputs(rs, cols, when=None, extra=()):
    o = ['[[outputs]]', 'record_set = %s' % q(rs)]
    if when: o.append('when_present = [%s]' % ', '.join(q(w) for w in when))
    o.append('[outputs.columns]')
    for c, v in cols: o.append('%s = %s' % (c, v if v.startswith('{') else q(v)))
    o.append('')
    return o
ids = [('insurer_no','insurer_no'),('insured_no','insured_no')]
out += outputs('recipient', ids + [('change_date','change_date')] + [(c,c) for c in ['change_kind','change_reason','wide_area_insurer_no','application_kind',
  'change_application_status','application_date','deemed_kind','care_level','valid_from','valid_to','visit_limit_units','visit_limit_from','visit_limit_to']])
out += outputs('copayment_ratio', ids + [('valid_from','copay_from'),('valid_to','copay_to'),('ratio','copay_ratio'),
  ('benefit_rate','{ field = "copay_ratio", lookup = "copayment_benefit_rate" }')], when=['copay_from'])
out += outputs('cost_limit', ids + [('valid_from','cost_limit_from'),('valid_to','cost_limit_to'),('application_status','cost_limit_application_status'),
  ('service_kind','cost_limit_service_kind')] + [(c,c) for c in ['tax_special_reduction','food_limit','room_unit_private','room_unit_semi_private',
  'room_conventional_private_tokuyo','room_conventional_private_roken','room_multi_bed','room_new_1','room_new_2','room_new_3']], when=['cost_limit_from'])
out += outputs('benefit_restriction', ids + [('kind','{ value = "reimbursement" }'),('valid_from','reimbursement_from'),('valid_to','reimbursement_to')], when=['reimbursement_from'])
out += outputs('benefit_restriction', ids + [('kind','{ value = "reduced_benefit" }'),('valid_from','reduced_benefit_from'),('valid_to','reduced_benefit_to')], when=['reduced_benefit_from'])
out += outputs('care_plan_notification', ids + [('valid_from','plan_valid_from'),('valid_to','plan_valid_to'),('plan_kind','plan_kind'),('support_office_no','support_office_no')], when=['plan_valid_from'])
out += outputs('special_address', ids + [('valid_from','special_address_from'),('valid_to','special_address_to'),('special_address_category','special_address_category'),
  ('facility_insurer_no','facility_insurer_no')], when=['special_address_from'])
mdir = os.path.join(ROOT, 'mappings'); os.makedirs(mdir, exist_ok=True)
open(os.path.join(mdir, 'kokuhoren_5311.toml'), 'w', encoding='utf-8').write('\n'.join(out))

# 09B
CERT = {4:'insurer_no',5:'insured_no',6:'application_date',7:'branch_no',8:'application_kind_legal',9:'application_kind',10:'withdrawal_kind',11:'insured_category',
 12:'proxy_kind',13:'birth_date',14:'age',15:'sex',23:'previous_result',24:'previous_valid_from',25:'previous_valid_to',26:'medical_institution_no',27:'doctor_no',
 28:'opinion_requested_date',29:'opinion_received_date',35:'survey_requested_date',36:'survey_date',37:'survey_office_no',39:'surveyor_no',41:'primary_judgement_date',
 42:'primary_result',43:'dementia_addition',44:'standard_time',63:'committee_material_date',64:'committee_date',65:'panel_no',67:'secondary_judgement_date',
 68:'secondary_result',69:'valid_from',70:'valid_to',71:'specified_disease',72:'state_for_care1',327:'committee_opinion',328:'comment'}
CT09 = {8:'application_kind_legal',9:'application_kind_at_filing',10:'withdrawal_kind',11:'insured_category',12:'proxy_kind',15:'sex',43:'dementia_addition',
 60:'stability',62:'estimated_benefit_kind',71:'specified_disease',72:'state_for_care1',186:'disability_independence',187:'dementia_independence',3:'nintei_interface_version'}
DATE09 = {6,13,24,25,28,29,35,36,41,63,64,67,69,70,285,286}
INT09 = {7:'int',14:'int'}
items = {int(r['item_no']): r for r in tsv('survey-items-09B.tsv')}
out = ['# 要介護認定 interface 09B (センター送信), CSV in CP932 with no quoting, 328 fields (SPEC §4.2).',
 '# Every field is declared and decoded strictly; [[outputs]] fill certification, certification_progress',
 '# and certification_survey (SPEC §5.1, §5.2).',
 'name = "nintei_09b"', 'label = "要介護認定 09B"', 'format = "csv"', 'encoding = "cp932"', 'mode = "incremental"',
 'primary_record_set = "certification"', '', '[csv]', 'quoting = false', 'fields = 328', '']
for r in tsv('nintei-09B-columns.tsv'):
    n = int(r['column']); name = CERT.get(n)
    if 112 <= n <= 185: name = 'item_%02d' % (n - 111)
    if n == 186: name = 'disability_independence'
    if n == 187: name = 'dementia_independence'
    if n == 3: name = 'interface_version'
    if name is None: name = 'field_%03d' % n
    ft = 'date' if n in DATE09 else INT09.get(n, 'text')
    if n == 44: ft = 'decimal'
    ct = CT09.get(n)
    if 112 <= n <= 185: ct = 'survey_answer_%s' % items[n-111]['answer_pattern']
    ends = n in (25, 70)
    out += field_block(name, 'field = %d' % n, ft, r['name_ja'], date='yyyymmdd' if ft=='date' else None, code_table=ct, ends_period=ends)
cid = ids + [('application_date','application_date'),('branch_no','branch_no')]
out += outputs('certification', cid + [(CERT[n], CERT[n]) for n in sorted(CERT) if n > 7])
out += ['[[outputs]]', 'record_set = "certification_progress"', '[outputs.columns]'] + ['%s = %s' % (a, q(b)) for a, b in cid] + [
 '# SPEC §5.2: the first rule that matches gives the status.',
 'status = { first_match = [',
 '  { when_in = { field = "withdrawal_kind", values = ["2", "3", "4"] }, value = "withdrawn" },',
 '  { when_present = ["secondary_judgement_date"], value = "decided" },',
 '  { when_present = ["committee_date"], value = "awaiting_committee" },',
 '  { when_present = ["primary_judgement_date"], value = "primary_judged" },',
 '  { when_present = ["opinion_received_date", "survey_date"], value = "awaiting_primary_judgement" },',
 '  { when_present = ["survey_date"], value = "awaiting_opinion" },',
 '  { value = "received" },', '] }', '']
surv = ['item_%02d' % i for i in range(1, 75)] + ['disability_independence', 'dementia_independence']
out += ['[[outputs]]', 'record_set = "certification_survey"', '# Only when one of fields 112–187 is not blank (SPEC §5.2).',
        'when_any_present = [%s]' % ', '.join(q(s) for s in surv), '[outputs.columns]'] + ['%s = %s' % (a, q(b)) for a, b in cid] + ['%s = %s' % (s, q(s)) for s in surv] + ['']
open(os.path.join(mdir, 'nintei_09b.toml'), 'w', encoding='utf-8').write('\n'.join(out))

# fixed-width register
FX = [('record_kind',1,1,'text',None,None,'レコード区分'),('insurer_no',2,6,'text',None,None,'保険者番号'),('insured_no',8,10,'text',None,None,'被保険者番号'),
 ('history_no',18,3,'int',None,None,'履歴番号'),('name_kana',21,50,'text','space',None,'カナ氏名'),('name_kanji',71,40,'text','zenkaku',None,'漢字氏名'),
 ('birth_date',111,7,'date',None,None,'生年月日'),('sex',118,1,'text',None,'sex','性別'),('postal_code',119,7,'text',None,None,'郵便番号'),
 ('address',126,120,'text','zenkaku',None,'住所'),('insured_category',246,1,'text',None,'insured_category','被保険者区分'),
 ('acquisition_date',247,7,'date',None,None,'資格取得年月日'),('acquisition_reason',254,3,'text',None,'qualification_reason','取得事由'),
 ('loss_date',257,7,'date',None,None,'資格喪失年月日'),('loss_reason',264,3,'text',None,'qualification_reason','喪失事由'),
 ('special_address_category',267,1,'text',None,'not_applicable_applicable','住所地特例区分'),('facility_insurer_no',268,6,'text',None,None,'施設所在保険者番号'),
 ('special_address_from',274,7,'date',None,None,'住所地特例適用開始'),('special_address_to',281,7,'date',None,None,'住所地特例適用終了'),
 ('certificate_issue_date',288,7,'date',None,None,'被保険者証交付年月日'),('reserved',295,106,'text','space',None,'予備')]
out = ['# 被保険者台帳 vendor extract, fixed-width CP932, 400-byte records (SPEC §4.3).',
 '# Byte ranges are [first byte (1-based), length]. Cut bytes first, then decode each field.',
 'name = "insured_register_fixed"', 'label = "被保険者台帳 (固定長)"', 'format = "fixed"', 'encoding = "cp932"', 'mode = "snapshot"',
 'primary_record_set = "insured_person"', '', '[fixed]', 'record_len = 400', '# crlf | none | auto (detected from the first record)', 'terminator = "auto"', '',
 '# Record kinds: 1 header, 2 data, 9 trailer.', '[envelope]', 'kind = { bytes = [1, 1] }', 'data_kind = "2"', '',
 '[envelope.header]', 'kind = "1"', 'insurer = { bytes = [2, 6] }', '', '[envelope.trailer]', 'kind = "9"', 'count = { bytes = [8, 9] }', 'insurer = { bytes = [2, 6] }', '']
for (name, s, l, ft, pad, ct, lab) in FX:
    out += field_block(name, 'bytes = [%d, %d]' % (s, l), ft, lab, date='wareki7' if ft=='date' else None, pad=pad, code_table=ct, ends_period=name in ('loss_date','special_address_to'))
out += outputs('insured_person', [(c, c) for c in ['insurer_no','insured_no','history_no']] + [('name_kana_raw','name_kana'),
  ('name_kana','{ field = "name_kana", normalize = "nfkc" }')] + [(c,c) for c in ['name_kanji','birth_date','sex','postal_code','address','insured_category',
  'acquisition_date','acquisition_reason','loss_date','loss_reason','special_address_category','facility_insurer_no','special_address_from','special_address_to','certificate_issue_date']])
open(os.path.join(mdir, 'insured_register_fixed.toml'), 'w', encoding='utf-8').write('\n'.join(out))
print('ok')
