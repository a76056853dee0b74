"""Header recognition on exports admins really have: English HR sheets, MSOnline, and
German, French, Spanish, Portuguese, Dutch and Nordic headers, in CSV and Excel files."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.roster_writers import write_csv, write_xlsx

from provision.errors import RosterReadError, UsageError
from provision.model import PhoneType
from provision.roster.reader import read_roster

M, A, O = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("header", "row", "columns", "phones"),
    [
        (  # the README tour's HR export
            ["Employee ID", "Work Email", "Cell Phone", "Office Tel", "Country"],
            ["E1", "ann@contoso.com", "(206) 555-0142", "425 555 0199", "US"],
            {"user": "Work Email", "mobile": "Cell Phone", "office": "Office Tel", "region": "Country"},
            {M: "+1 2065550142", O: "+1 4255550199"},
        ),
        (
            ["Email Address", "Mobile Number", "Office Phone"],
            ["ann@contoso.com", "+1 206 555 0142", "+1 425 555 0199"],
            {"user": "Email Address", "mobile": "Mobile Number", "office": "Office Phone"},
            {M: "+1 2065550142", O: "+1 4255550199"},
        ),
        (  # German: Handy is the mobile, Büro and a bare Telefon the office, Land the country
            ["E-Mail", "Handy", "Büro", "Land"],
            ["ann@contoso.com", "0151 23456789", "030 1234567", "DE"],
            {"user": "E-Mail", "mobile": "Handy", "office": "Büro", "region": "Land"},
            {M: "+49 15123456789", O: "+49 301234567"},
        ),
        (
            ["E-MAIL", "MOBIL", "TELEFON", "LAND"],
            ["ann@contoso.com", "0151 23456789", "030 1234567", "DE"],
            {"user": "E-MAIL", "mobile": "MOBIL", "office": "TELEFON", "region": "LAND"},
            {M: "+49 15123456789", O: "+49 301234567"},
        ),
        (  # French, accents dropped or not
            ["Courriel", "Portable", "Téléphone", "Pays"],
            ["ann@contoso.com", "06 12 34 56 78", "01 23 45 67 89", "FR"],
            {"user": "Courriel", "mobile": "Portable", "office": "Téléphone", "region": "Pays"},
            {M: "+33 612345678", O: "+33 123456789"},
        ),
        (  # Spanish
            ["Correo", "Móvil", "Teléfono", "País"],
            ["ann@contoso.com", "612 34 56 78", "912 34 56 78", "ES"],
            {"user": "Correo", "mobile": "Móvil", "office": "Teléfono", "region": "País"},
            {M: "+34 612345678", O: "+34 912345678"},
        ),
        (  # Portuguese (Brazil)
            ["Correo", "Celular", "Telefone", "PAIS"],
            ["ann@contoso.com", "(11) 91234-5678", "(11) 3123-4567", "BR"],
            {"user": "Correo", "mobile": "Celular", "office": "Telefone", "region": "PAIS"},
            {M: "+55 11912345678", O: "+55 1131234567"},
        ),
        (  # Dutch
            ["E-mail", "Mobiel", "Telefoon", "Land"],
            ["ann@contoso.com", "06 12345678", "020 1234567", "NL"],
            {"user": "E-mail", "mobile": "Mobiel", "office": "Telefoon", "region": "Land"},
            {M: "+31 612345678", O: "+31 201234567"},
        ),
        (  # Get-MsolUser: MobilePhone is the mobile, so PhoneNumber is the office phone
            ["UserPrincipalName", "DisplayName", "MobilePhone", "PhoneNumber", "AlternateMobilePhones"],
            ["ann@contoso.com", "Ann", "+1 206 555 0142", "+1 425 555 0199", "+1 206 555 0143"],
            {"user": "UserPrincipalName", "mobile": "MobilePhone", "alternate_mobile": "AlternateMobilePhones", "office": "PhoneNumber"},
            {M: "+1 2065550142", A: "+1 2065550143", O: "+1 4255550199"},
        ),
        (  # an MFA-details export: PhoneNumber alone is the MFA phone, a mobile
            ["UserPrincipalName", "PhoneNumber", "AlternativePhoneNumber", "Email"],
            ["ann@contoso.com", "+1 206 555 0142", "+1 206 555 0143", "ann@mail.example"],
            {"user": "UserPrincipalName", "mobile": "PhoneNumber", "alternate_mobile": "AlternativePhoneNumber"},
            {M: "+1 2065550142", A: "+1 2065550143"},
        ),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_real_export_headers_are_recognised(
    tmp_path: Path, suffix: str, header: list[str], row: list[str], columns: dict[str, str], phones: dict[PhoneType, str]
) -> None:
    path = tmp_path / f"export{suffix}"
    if suffix == ".csv":
        write_csv(path, [header, row])
    else:
        write_xlsx(path, {"Export": [header, row]})
    roster = read_roster(path, default_region="US")
    assert dict(roster.columns) == columns
    assert roster.users["ann@contoso.com"].phones == phones
    assert roster.issues == ()


def test_two_columns_for_one_field_keep_the_documented_preference(tmp_path: Path) -> None:
    rows = [["Work Email", "Email", "Telefon", "Bürotelefon", "Handy"], ["ann@contoso.com", "ann@home.example", "030 1234567", "030 7654321", ""]]
    roster = read_roster(write_csv(tmp_path / "r.csv", rows), default_region="DE")
    assert dict(roster.columns) == {"user": "Work Email", "office": "Bürotelefon", "mobile": "Handy"}
    assert roster.extra_columns == ("Email", "Telefon")  # passthrough, shown as such
    assert roster.users["ann@contoso.com"].phones[O] == "+49 307654321"


def test_one_column_mapped_to_two_fields_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [["UPN", "Cell"], ["ann@contoso.com", "+1 2065550142"]])
    with pytest.raises(UsageError, match="mobile and office fields are both mapped to the column 'Cell'"):
        read_roster(path, columns={"mobile": "Cell", "office": "cell"})


def test_missing_columns_say_how_to_map_one(tmp_path: Path) -> None:
    no_user = write_csv(tmp_path / "a.csv", [["Name", "Mobile"], ["Ann", "+1 2065550142"]])
    with pytest.raises(RosterReadError) as user_error:
        read_roster(no_user)
    assert str(user_error.value) == (
        "a.csv: the roster has no user column (a UPN or object id; looked for user, userprincipalname, upn, "
        "objectid, userid, username, signinname, workemail...); columns found: 'Name', 'Mobile'; "
        'map one with --column user=HEADER or [roster.columns] user = "HEADER" in the job'
    )
    no_phone = write_csv(tmp_path / "b.csv", [["UPN", "Pager"], ["ann@contoso.com", "+1 2065550142"]])
    with pytest.raises(RosterReadError, match='no phone column.*map one with --column mobile=HEADER or \\[roster.columns\\] mobile = "HEADER"'):
        read_roster(no_phone)


def test_the_readme_tours_sample_now_reads() -> None:
    roster = read_roster(REPO / "sample_data" / "new_hires.xlsx", default_region="US", workers=0)
    assert roster.columns["user"] == "Work Email" and roster.columns["mobile"] == "Mobile Phone"
    assert len(roster.rows) == 25 and len(roster.users) == 20
