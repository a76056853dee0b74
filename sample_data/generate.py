"""Writes the demo tenant and the three jobs' rosters (run: python sample_data/generate.py).

Deterministic content (the .xlsx container's timestamps aside). Each job has its own users, so the jobs can run
in any order against one tenant, and each shows creates, updates, no-ops, conflicts and
row errors. Every number is fictional (US 555-01xx, documentation ranges elsewhere).

    contoso_tenant.json   the sandbox tenant the jobs start from
    new_hires.xlsx        onboarding: HR new-hire sheet, international numbers (additive, SMS on)
    msonline_export.csv   legacy MFA migration: MSOnline StrongAuthenticationUserDetails export (fill-empty)
    hr_extract.csv        nightly reconciliation: HR system extract, ';'-separated (authoritative)
    fleet/                the fleet rehearsal (jobs/msp_fleet.toml): six customer tenants' snapshots,
                          rosters and tenants.csv (provision.sandbox.fleet_seed)
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

from openpyxl import Workbook

from provision.model import METHOD_IDS, PhoneType
from provision.sandbox.fleet_seed import seed_fleet
from provision.sandbox.snapshot import save_snapshot
from provision.sandbox.tenant import Tenant

HERE = Path(__file__).resolve().parent
DOMAIN = "contoso.com"
NAMESPACE = uuid.UUID("8a4b7d0e-3c1f-4e55-9f0a-2b6c1d7e9a10")
TENANT_ID = "7d3c1b2a-9e8f-4a6b-8c5d-0e1f2a3b4c5d"
MOBILE, ALT, OFFICE = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE


def upn(name: str) -> str:
    return f"{name}@{DOMAIN}"


def uid(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


# name -> phones already registered in the tenant, and whether the mobile signs in by SMS.
TENANT: dict[str, tuple[dict[PhoneType, str], bool]] = {
    # onboarding: new hires exist in Entra (created by HR sync) with no phones yet...
    **{n: ({}, False) for n in (
        "amara.okafor", "lukas.schmidt", "sofia.rossi", "hiroshi.tanaka", "priya.sharma", "lucas.silva",
        "chloe.martin", "oliver.smith", "emma.johnson", "noah.williams", "mia.brown", "jack.taylor",
        "ethan.moore", "isla.clark", "leo.lewis", "grace.hall", "henry.young", "mila.king", "ruby.scott",
        "harper.green",
    )},
    # ...but some were pre-registered by IT already.
    "liam.davies": ({MOBILE: "+44 7911123458"}, True),  # already right: no-op
    "ava.wilson": ({MOBILE: "+1 2065550150"}, True),  # HR has a newer number: update
    # legacy MFA migration users
    "paul.walker": ({}, False),
    "nina.patel": ({}, False),
    "omar.haddad": ({MOBILE: "+1 4255550130"}, False),  # registered a number himself: kept
    "rita.gomez": ({MOBILE: "+1 4255550104", ALT: "+1 4255550105"}, False),  # already right
    "tom.becker": ({}, False),
    "yuki.sato": ({}, False),
    "zara.ahmed": ({MOBILE: "+1 4255550140"}, False),  # only the alternate is missing
    "ben.carter": ({}, False),
    "kim.nguyen": ({}, False),
    "sara.lind": ({}, False),
    "max.weber": ({}, False),
    # nightly reconciliation staff
    "sam.taylor": ({MOBILE: "+1 2065550160", OFFICE: "+1 4255550160"}, True),  # holds an SMS number
    "anna.kowalski": ({MOBILE: "+48 512345678", OFFICE: "+48 221234567"}, True),  # no-op
    "david.cohen": ({MOBILE: "+972 501234567"}, True),  # new mobile: update
    "elena.petrova": ({MOBILE: "+1 2065550171", OFFICE: "+1 4255550171"}, False),  # office left: delete
    "felix.wagner": ({OFFICE: "+49 30901820"}, False),  # office number becomes his mobile: create + delete
    "hana.kim": ({MOBILE: "+82 1023456789", ALT: "+82 1023456790"}, True),  # mobile blanked, alternate kept
    "ivan.horvat": ({}, False),  # new desk phone: create
    "julia.santos": ({MOBILE: "+55 21987654321"}, True),  # no-op
    "kofi.mensah": ({MOBILE: "+233 241234567", OFFICE: "+233 302123456"}, False),  # no-op
    "laura.fischer": ({MOBILE: "+49 15123456780"}, True),  # no-op
    "mateo.lopez": ({MOBILE: "+34 612345678", OFFICE: "+34 912345678"}, False),  # office update
    "olga.ivanova": ({MOBILE: "+1 2065550173"}, True),  # HR gives her a number still held for SMS sign-in
    # left the company: soft-deleted, but still holds a number for SMS sign-in
    "former.employee": ({MOBILE: "+1 2065550199"}, True),
}
DELETED = {"former.employee"}
SMS_EXCLUDED = {"ruby.scott"}


def build_tenant() -> Tenant:
    tenant = Tenant(tenant_id=TENANT_ID)
    # Phones are registered with the SMS policy off, so only the mobiles marked below sign in
    # by SMS (as in a tenant that turned SMS sign-in on after years of MFA registrations).
    tenant.update_sms_policy({"state": "disabled"})
    for name, (phones, _) in TENANT.items():
        display = name.replace(".", " ").title()
        tenant.create_user(upn(name), display, id=uid(name))
        for ptype in (MOBILE, ALT, OFFICE):
            if ptype in phones:
                tenant.create_phone(upn(name), phones[ptype], ptype.value)
    tenant.update_sms_policy(
        {
            "state": "enabled",
            "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False, "isUsableForSignIn": True}],
            "excludeTargets": [{"targetType": "user", "id": uid(n)} for n in sorted(SMS_EXCLUDED)],
        }
    )
    for name, (phones, sms) in TENANT.items():
        if sms:
            tenant.enable_sms_sign_in(upn(name), METHOD_IDS[MOBILE])
    for name in DELETED:
        tenant.delete_user(upn(name))
    tenant.check_invariants()
    return tenant


NEW_HIRES_HEADER = ["Employee ID", "Work Email", "Display Name", "Country", "Mobile Phone", "Office Phone", "Start Date"]
NEW_HIRES: list[list[object]] = [
    ["E1001", upn("amara.okafor"), "Amara Okafor", "NG", "0803 123 4567", "", "2026-12-01"],
    ["E1002", upn("lukas.schmidt"), "Lukas Schmidt", "DE", "0151 23456789", "", "2026-12-01"],
    ["E1003", upn("sofia.rossi"), "Sofia Rossi", "IT", "+39 312 345 6789", "+39 06 1234 5678", "2026-12-01"],
    ["E1004", upn("hiroshi.tanaka"), "Hiroshi Tanaka", "JP", "090-1234-5678", "", "2026-12-01"],
    ["E1005", upn("priya.sharma"), "Priya Sharma", "IN", "98765 43210", "", "2026-12-01"],
    ["E1006", upn("lucas.silva"), "Lucas Silva", "BR", "(11) 91234-5678", "", "2026-12-08"],
    ["E1007", upn("chloe.martin"), "Chloé Martin", "FR", "06 12 34 56 78", "", "2026-12-08"],
    ["E1008", upn("oliver.smith"), "Oliver Smith", "GB", "07911 123456", "020 7946 0958 ext. 12", "2026-12-08"],
    ["E1009", upn("emma.johnson"), "Emma Johnson", "US", "(206) 555-0142", "", "2026-12-08"],
    # Excel stored these as numbers: one intact, one that lost its "+"
    ["E1010", upn("noah.williams"), "Noah Williams", "US", 2065550143, "", "2026-12-08"],
    ["E1011", upn("mia.brown"), "Mia Brown", "", 447911123457, "", "2026-12-15"],
    ["E1012", upn("jack.taylor"), "Jack Taylor", "AU", "0412 345 678", "", "2026-12-15"],
    ["E1013", upn("liam.davies"), "Liam Davies", "GB", "+44 7911 123458", "", "2026-12-15"],
    ["E1014", upn("ava.wilson"), "Ava Wilson", "US", "206-555-0151", "", "2026-12-15"],
    # conflicts: a number another user signs in with by SMS; one number for two hires
    ["E1015", upn("ethan.moore"), "Ethan Moore", "US", "+1 206 555 0160", "", "2026-12-15"],
    ["E1016", upn("isla.clark"), "Isla Clark", "US", "+1 206 555 0161", "", "2026-12-15"],
    ["E1017", upn("leo.lewis"), "Leo Lewis", "US", "206.555.0161", "", "2026-12-15"],
    # row errors
    ["E1018", "Zoe Hall", "Zoe Hall", "US", "(206) 555-0144", "", "2026-12-15"],
    ["E1019", upn("grace.hall"), "Grace Hall", "US", "12345", "", "2026-12-15"],
    ["E1020", upn("henry.young"), "Henry Young", "US", "+1 206 555 0170 x55", "", "2026-12-15"],
    ["E1021", upn("mila.king"), "Mila King", "US", "(206) 555-0145", "", "2026-12-15"],
    ["E1021", upn("mila.king"), "Mila King", "US", "(206) 555-0146", "", "2026-12-15"],
    # not in the tenant yet (HR sync hasn't run): user_not_found
    ["E1022", upn("ghost.hire"), "Ghost Hire", "US", "(206) 555-0147", "", "2026-12-22"],
    # excluded from the SMS sign-in policy: phone yes, SMS sign-in no (warning)
    ["E1023", upn("ruby.scott"), "Ruby Scott", "US", "(206) 555-0148", "", "2026-12-22"],
    # a London landline typed in the mobile column: accepted with a warning
    ["E1024", upn("harper.green"), "Harper Green", "GB", "020 7946 0000", "", "2026-12-22"],
    [None, None, None, None, None, None, None],
]

MSONLINE_HEADER = ["UserPrincipalName", "DisplayName", "PhoneNumber", "AlternativePhoneNumber", "Email", "DefaultMethod"]
MSONLINE: list[list[str]] = [
    [upn("paul.walker"), "Paul Walker", "+1 4255550101", "+1 4255550102", "paul.walker@fabrikam.example", "OneWaySMS"],
    [upn("nina.patel"), "Nina Patel", "+44 7911123460", "", "", "PhoneAppNotification"],
    [upn("omar.haddad"), "Omar Haddad", "+1 4255550103", "", "", "TwoWayVoiceMobile"],
    [upn("rita.gomez"), "Rita Gomez", "+1 (425) 555-0104", "+1 425-555-0105", "", "OneWaySMS"],
    [upn("tom.becker"), "Tom Becker", "+49 15123456781", "+49 30 901820", "", "TwoWayVoiceMobile"],
    [upn("yuki.sato"), "Yuki Sato", "+81 9012345679", "", "", "OneWaySMS"],
    [upn("zara.ahmed"), "Zara Ahmed", "+1 4255550140", "+1 4255550141", "", "OneWaySMS"],
    # MSOnline accepted extensions on the authentication phone; Graph's mobile can't have one
    [upn("ben.carter"), "Ben Carter", "+1 4255550106 x123", "", "", "TwoWayVoiceMobile"],
    [upn("kim.nguyen"), "Kim Nguyen", "+1 555", "", "", "OneWaySMS"],
    # an alternate phone with no mobile at all
    [upn("sara.lind"), "Sara Lind", "", "+46 701234567", "", "TwoWayVoiceAlternateMobile"],
    # the number a departed user still holds for SMS sign-in: saved, but SMS sign-in conflicts
    [upn("max.weber"), "Max Weber", "+1 2065550199", "", "", "OneWaySMS"],
    # exported twice (identical rows merge)
    [upn("yuki.sato"), "Yuki Sato", "+81 9012345679", "", "", "OneWaySMS"],
    # left the company: no such user
    [upn("old.contractor"), "Old Contractor", "+1 4255550107", "", "", "OneWaySMS"],
]

HR_HEADER = ["employee_id", "upn", "mobile", "office", "country", "cost_center"]
HR: list[list[str]] = [
    ["S2001", upn("sam.taylor"), "+1 206 555 0160", "+1 425 555 0160", "US", "=SUM(A1:A9)"],
    ["S2002", upn("anna.kowalski"), "512 345 678", "22 123 45 67", "PL", "CC-100"],
    ["S2003", upn("david.cohen"), "050-123-4568", "", "IL", "CC-100"],
    ["S2004", upn("elena.petrova"), "(206) 555-0171", "", "US", "CC-200"],
    ["S2005", upn("felix.wagner"), "030 901820", "", "DE", "CC-200"],
    ["S2006", upn("hana.kim"), "", "", "KR", "CC-300"],
    ["S2007", upn("ivan.horvat"), "", "+385 1 2345 678", "HR", "CC-300"],
    ["S2008", upn("julia.santos"), "(21) 98765-4321", "", "BR", "CC-300"],
    ["S2009", upn("kofi.mensah"), "024 123 4567", "030 212 3456", "GH", "CC-400"],
    ["S2010", upn("laura.fischer"), "0151 23456780", "", "DE", "CC-400"],
    ["S2011", upn("mateo.lopez"), "612 345 678", "913 456 789", "ES", "CC-400"],
    ["S2014", upn("olga.ivanova"), "(206) 555-0199", "", "US", "CC-500"],
    ["S2012", upn("victor.nowhere"), "(206) 555-0172", "", "US", "CC-500"],
    ["S2013", upn("wendy.typo"), "206-555-01", "", "US", "CC-500"],
]


def write_new_hires(path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "New hires"
    ws.append(NEW_HIRES_HEADER)
    for row in NEW_HIRES:
        ws.append(row)
    notes = wb.create_sheet("Notes")
    notes.append(["Exported from the HR system; one row per new hire."])
    wb.save(path)


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, delimiter: str = ",", bom: bool = False) -> None:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    save_snapshot(build_tenant(), HERE / "contoso_tenant.json")
    write_new_hires(HERE / "new_hires.xlsx")
    write_csv(HERE / "msonline_export.csv", MSONLINE_HEADER, MSONLINE)
    write_csv(HERE / "hr_extract.csv", HR_HEADER, HR, delimiter=";", bom=True)
    # The fleet rehearsal (jobs/msp_fleet.toml): six customer tenants of twenty users each.
    seed_fleet(HERE / "fleet", tenants=6, users=20, seed=7)


if __name__ == "__main__":
    main()
