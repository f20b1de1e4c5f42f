"""Personal data by pattern and checksum: what is caught, what is left alone, how it is redacted."""

from __future__ import annotations

import pytest

from dari.guards.pii import find_pii, fingerprint, redact


def kinds(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.value(text)) for m in find_pii(text)]


@pytest.mark.parametrize(
    "text, value",
    [
        ("제 번호는 010-1234-5678로 연락주세요", "010-1234-5678"),  # particle glued to the number
        ("휴대폰 01012345678", "01012345678"),
        ("대표번호 02-3456-7890입니다.", "02-3456-7890"),
        ("call me at +82 10-9876-5432.", "+82 10-9876-5432"),
        ("my phone: 905-674-3793.", "905-674-3793"),
    ],
)
def test_phone_numbers_korean_and_international(text: str, value: str):
    assert ("phone", value) in kinds(text)


def test_company_hotlines_and_dates_are_not_phone_numbers():
    assert kinds("고객센터 1588-9999로 문의하세요. 2024-05-10 14:00 예약") == []


def test_resident_registration_number_by_checksum_and_by_format():
    assert find_pii("주민번호 9001011234568")[0].rule == "rrn:checksum"  # valid check digit
    assert kinds("생년 950101-2345678입니다") == [("rrn", "950101-2345678")]  # post-2020 style
    assert kinds("8807151234567") == []  # 13 bare digits, bad checksum, no label: not claimed
    assert kinds("주민등록번호: 8807151234567") == [("rrn", "8807151234567")]
    assert kinds("920418-2******") == [("rrn", "920418-2******")]  # masked is still personal
    assert kinds("991399-1234567") == []  # month 13


def test_cards_need_luhn_or_a_label():
    assert kinds("card 4111 1111 1111 1111 exp 12/29") == [("card", "4111 1111 1111 1111")]
    assert kinds("order 4111 1111 1111 1112") == []  # fails Luhn, no label
    assert kinds("카드번호 4123-4567-8901-2345") == [("card", "4123-4567-8901-2345")]
    assert kinds("9430-12**-****-5678") == [("card", "9430-12**-****-5678")]


def test_accounts_and_passports_need_their_label_or_format():
    assert kinds("국민은행 계좌 123-45-6789-012로 입금") == [("account", "123-45-6789-012")]
    assert kinds("문서번호 123-45-6789-012") == []
    assert kinds("여권번호는 M12345678이며") == [("passport", "M12345678")]


def test_ip_addresses_but_not_networks_masks_or_versions():
    assert kinds("접속 IP 203.248.52.100에서") == [("ip", "203.248.52.100")]
    assert kinds("서브넷 255.255.255.0, 대역 10.0.0.0/8, 버전: 4.8.1.3") == []
    assert kinds("v6 2001:db8:85a3::8a2e:370:7334") == [("ip", "2001:db8:85a3::8a2e:370:7334")]


def test_email_plain_masked_spelt_and_disguised():
    assert kinds("mail kim.cs@naver.com.") == [("email", "kim.cs@naver.com")]
    assert kinds("park***@naver.com") == [("email", "park***@naver.com")]
    assert kinds("seller[at]gmail[dot]com")[0][0] == "email"
    full_width = "ｔｅｓｔ＠ｇｍａｉｌ．ｃｏｍ"  # offsets still point into the original text
    assert kinds(full_width) == [("email", full_width)]


def test_iban_and_ssn_checks():
    assert kinds("IBAN GB82 WEST 1234 5698 7654 32")[0][0] == "iban"
    assert kinds("SSN 078-05-1120")[0] == ("ssn", "078-05-1120")
    assert kinds("SSN 666-05-1120") == []


def test_redact_replaces_each_span_with_its_kind():
    text = "010-1234-5678 또는 kim@x.co.kr 로 연락"
    assert redact(text, find_pii(text)) == "[PHONE] 또는 [EMAIL] 로 연락"


def test_fingerprint_matches_the_same_number_written_differently():
    a, b = "010-1234-5678", "01012345678"
    assert fingerprint(find_pii(a)[0], a) == fingerprint(find_pii(b)[0], b)


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\xff" * 100, "가" * 200_000, "1" * 10_000])
def test_odd_input_never_raises(text: str):
    find_pii(text)


@pytest.mark.parametrize(
    "text, kind, value",
    [
        ("연락처: O1O-9876-543Z 입니다", "phone", "O1O-9876-543Z"),  # OCR's letters for digits
        ("주민등록번호: 85O315-l234567", "rrn", "85O315-l234567"),
        ("０１０−１２３４−５６７８", "phone", "０１０−１２３４−５６７８"),  # full width, minus sign
        ("전화번호는 공일공-일이삼사-오육칠팔", "phone", "공일공-일이삼사-오육칠팔"),  # in Hangul
        ("자택전화: 02-345*-**78", "phone", "02-345*-**78"),  # a masked landline
        ("Mobile: 0341 8387176", "phone", "0341 8387176"),
        ("They're not answering at 78 651 450", "phone", "78 651 450"),
        ("416 60 039 office", "phone", "416 60 039"),  # the kind written after the number
        ("Desk: 5403926876", "phone", "5403926876"),
        ("my card number 630427373398 is lost", "card", "630427373398"),  # 12 digits, labelled
        ("last billed amount for cc 503802053770", "card", "503802053770"),
        ("transfer from GB56HXDO88167774656119 to other bank", "iban", "GB56HXDO88167774656119"),
        ("계좌번호: 267-910123-45678", "account", "267-910123-45678"),  # passes Luhn: not a card
        ("여권번호: C4F7HJ2K1", "passport", "C4F7HJ2K1"),
        ("My driver's license number is F162823540116", "driver_license", "F162823540116"),
    ],
)
def test_disguised_and_labelled_numbers(text: str, kind: str, value: str):
    assert (kind, value) in kinds(text)


def test_a_column_header_labels_the_cells_below_it():
    table = (
        "등록번호 | 성명 | 국적 | 여권번호 | 납부\n"
        "---|---|---|---|---\n"
        "REG-002 | Sarah Johnson | 미국 | 432198765 | 완료\n"
        "REG-003 | Liu Xiaoming | 중국 | E12345678 | 완료"
    )
    assert [k for k in kinds(table) if k[0] == "passport"] == [
        ("passport", "432198765"),
        ("passport", "E12345678"),
    ]
    assert kinds("번호 | 이름\n1 | 432198765") == []  # no label in that column


def test_unlabelled_digit_runs_and_words_stay_alone():
    assert kinds("order 5403926876 shipped") == []  # a bare run of digits needs a label
    assert kinds("구분 2018 2019 2020 매출") == []
    assert kinds("The Boeing 737 seats 160 passengers") == []
    assert kinds("이사 회의는 삼층에서") == []  # Hangul digit syllables inside words


def test_crypto_wallets_by_checksum_or_shape():
    assert kinds("지갑: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa") == [
        ("crypto", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    ]
    assert kinds("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")[0][0] == "crypto"
    assert kinds("to 0x742d35Cc6634C0532925a3b844Bc9e7595f2bD18")[0][0] == "crypto"
    assert kinds("1BoatSLRHtKNngkdXEeobR76b53LETtpyX") == []  # base58 checksum fails
    tx = "0x" + "a1b2c3d4e5f60718293a4b5c6d7e8f90" * 2  # a transaction hash, not a wallet
    assert kinds(f"hash {tx}") == []
    assert (
        redact(
            "pay 0x742d35Cc6634C0532925a3b844Bc9e7595f2bD18",
            find_pii("pay 0x742d35Cc6634C0532925a3b844Bc9e7595f2bD18"),
        )
        == "pay [CRYPTO_WALLET]"
    )
