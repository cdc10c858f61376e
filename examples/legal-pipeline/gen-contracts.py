#!/usr/bin/env python3
"""examples/legal-pipeline/gen-contracts.py OUTDIR [SEED]

Writes a small set of realistic contracts (NDA, services, lease, loan, share
purchase, employment) into OUTDIR/contracts/, each with its parties, bank
details (IBANs with correct mod-97 check digits, so a real validator accepts
them), and signatories' e-mail addresses and telephone numbers. It also
writes OUTDIR/planted.tsv: one line per personal or payment value planted
(kind TAB value TAB file), so a test can prove none of them reaches a model.

Deterministic for a given SEED (default 7): the test regenerates the same
values. It must never emit a value that looks real: every e-mail domain is
under .example and phone numbers are from the ranges reserved for drama
(Ofcom 020 7946 0xxx, NANP 555-01xx) or from test blocks.
"""
import os
import random
import sys

# Country: (IBAN length, BBAN template: 'A' = upper-case letter, '9' = digit).
IBAN_FORMATS = {
    "GB": "AAAA99999999999999",        # 22 with country and check digits
    "DE": "999999999999999999",        # 22
    "FR": "9999999999AAAAAAAAAAA99",   # 27 (the key fields are alphanumeric)
    "NL": "AAAA9999999999",            # 18
    "IE": "AAAA99999999999999",        # 22
}


def iban(rng, country):
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") if c == "A"
                   else rng.choice("0123456789") for c in IBAN_FORMATS[country])
    # ISO 13616: move country + "00" to the end, letters to numbers, mod 97.
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(digits) % 97
    raw = f"{country}{check:02d}{bban}"
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))


PHONES = {
    "GB": lambda r: f"+44 20 7946 0{r.randint(100, 999)}",
    "DE": lambda r: f"+49 30 {r.randint(1000, 9999)} {r.randint(1000, 9999)}",
    "FR": lambda r: f"+33 1 {r.randint(40, 79)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}",
    "NL": lambda r: f"+31 20 {r.randint(100, 999)} {r.randint(1000, 9999)}",
    "IE": lambda r: f"+353 1 {r.randint(100, 999)} {r.randint(1000, 9999)}",
    "US": lambda r: f"({r.choice([212, 415, 312, 617])}) 555-01{r.randint(10, 99)}",
}

COMPANIES = [
    ("Hartwell & Finch LLP", "GB", "12 Bishopsgate, London EC2N 4AJ", "hartwell-finch.example"),
    ("Nordlicht Logistik GmbH", "DE", "Friedrichstraße 88, 10117 Berlin", "nordlicht-logistik.example"),
    ("Société Marchand Frères SA", "FR", "41 rue de Rivoli, 75001 Paris", "marchand-freres.example"),
    ("Van Dijk Maritime B.V.", "NL", "Keizersgracht 210, 1016 DZ Amsterdam", "vandijk-maritime.example"),
    ("Liffey Biologics DAC", "IE", "3 Grand Canal Quay, Dublin 2", "liffey-bio.example"),
    ("Cascade Robotics Inc.", "US", "500 Pine Street, Seattle WA 98101", "cascade-robotics.example"),
    ("Pembroke Estates Ltd", "GB", "7 Queen Street, Edinburgh EH2 1JE", "pembroke-estates.example"),
    ("Rheinwerk Capital AG", "DE", "Königsallee 60, 40212 Düsseldorf", "rheinwerk-capital.example"),
]
PEOPLE = [
    ("Eleanor Whitcombe", "General Counsel"), ("Matthias Brandt", "Geschäftsführer"),
    ("Camille Moreau", "Directrice juridique"), ("Pieter de Vries", "Chief Financial Officer"),
    ("Aoife Gallagher", "Company Secretary"), ("Daniel Okafor", "VP Legal"),
    ("Fiona MacLeod", "Managing Director"), ("Katrin Vogel", "Head of Treasury"),
    ("Julien Roussel", "Legal Counsel"), ("Sarah Lindqvist", "Chief Executive Officer"),
    ("Hugo Albrecht", "Prokurist"), ("Grace Nakamura", "Deputy General Counsel"),
]

KINDS = [
    ("nda", "MUTUAL NON-DISCLOSURE AGREEMENT", "Discloser", "Recipient"),
    ("services", "MASTER SERVICES AGREEMENT", "Supplier", "Customer"),
    ("lease", "COMMERCIAL LEASE", "Landlord", "Tenant"),
    ("loan", "TERM LOAN FACILITY AGREEMENT", "Lender", "Borrower"),
    ("spa", "SHARE PURCHASE AGREEMENT", "Seller", "Buyer"),
    ("employment", "EXECUTIVE SERVICE AGREEMENT", "Company", "Executive"),
]


def person(rng, used, company):
    name, title = rng.choice([p for p in PEOPLE if p[0] not in used])
    used.add(name)
    first, last = name.split()[0], name.split()[-1]
    local = f"{first}.{last}".lower().replace("é", "e").replace("ö", "o")
    return {"name": name, "title": title, "email": f"{local}@{company[3]}",
            "phone": PHONES[company[1]](rng)}


def contract(rng, kind, planted, fname):
    slug, title, role_a, role_b = kind
    a, b = rng.sample(COMPANIES, 2)
    used = set()
    pa, pb = person(rng, used, a), person(rng, used, b)
    iban_a = iban(rng, a[1] if a[1] in IBAN_FORMATS else "IE")
    amount = rng.choice([25_000, 120_000, 480_000, 1_250_000, 3_400_000])
    day, month = rng.randint(1, 28), rng.choice(["January", "March", "May", "July", "September", "November"])
    for kind_, value in (("iban", iban_a), ("email", pa["email"]), ("email", pb["email"]),
                         ("phone", pa["phone"]), ("phone", pb["phone"])):
        planted.append((kind_, value, fname))
    term = {"nda": "three (3) years", "services": "twenty-four (24) months",
            "lease": "ten (10) years", "loan": "five (5) years", "spa": "until Completion",
            "employment": "an indefinite term"}[slug]
    payment = {
        "nda": f"No fee is payable under this Agreement. Costs of any return of materials\n"
               f"shall be reimbursed to the {role_a} by transfer to:",
        "services": f"The {role_b} shall pay each undisputed invoice within thirty (30) days, up to\n"
                    f"EUR {amount:,} per contract year, by transfer to:",
        "lease": f"The {role_b} shall pay the annual rent of EUR {amount:,} quarterly in advance\n"
                 f"on the usual quarter days, by standing order to:",
        "loan": f"The {role_a} shall advance EUR {amount:,}; repayments and interest at\n"
                f"EURIBOR plus 3.25 per cent shall be paid on each Interest Payment Date to:",
        "spa": f"The consideration of EUR {amount:,} shall be paid at Completion in cleared\n"
               f"funds to the {role_a}'s account:",
        "employment": f"The {role_a} shall pay the {role_b} a base salary of EUR {amount // 10:,} a\n"
                      f"year in twelve equal monthly instalments. Expenses are reimbursed to:",
    }[slug]
    return f"""{title}

This {title.title()} (the "Agreement") is dated {day} {month} 2025 and made between:

(1) {a[0]}, {a[2]} (the "{role_a}"); and
(2) {b[0]}, {b[2]} (the "{role_b}").

1. DEFINITIONS
In this Agreement "Confidential Information" means all information disclosed by
one party to the other, in any form, that is marked or reasonably understood to
be confidential.

2. TERM AND TERMINATION
2.1 This Agreement starts on the date above and continues for {term}.
2.2 Either party may terminate this Agreement by written notice if the other
    commits a material breach that is not remedied within thirty (30) days.

3. PAYMENT
3.1 {payment.replace(chr(10), chr(10) + "    ")}
    Account holder: {a[0]}
    IBAN: {iban_a}
3.2 Late payments bear interest at four (4) per cent above the base rate.

4. CONFIDENTIALITY
Each party shall keep the other's Confidential Information secret and use it
only for the purposes of this Agreement.

5. LIMITATION OF LIABILITY
Neither party's total liability shall exceed the amounts paid in the twelve
(12) months before the claim, save for fraud or death or personal injury.

6. NOTICES
Notices shall be given in writing to:
    {role_a}: {pa['name']}, {pa['title']}, {pa['email']}, tel. {pa['phone']}
    {role_b}: {pb['name']}, {pb['title']}, {pb['email']}, tel. {pb['phone']}

7. GOVERNING LAW
This Agreement is governed by the laws of {"England and Wales" if a[1] == "GB" else
    {"DE": "Germany", "FR": "France", "NL": "the Netherlands", "IE": "Ireland",
     "US": "the State of New York"}[a[1]]}.

SIGNED by {pa['name']} for {a[0]}      ____________________
SIGNED by {pb['name']} for {b[0]}      ____________________
"""


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: gen-contracts.py OUTDIR [SEED]")
    out = sys.argv[1]
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) == 3 else 7)
    os.makedirs(os.path.join(out, "contracts"), exist_ok=True)
    planted = []
    for i, kind in enumerate(KINDS, 1):
        fname = f"contracts/2025-{i:03d}-{kind[0]}.txt"
        with open(os.path.join(out, fname), "w", encoding="utf-8") as f:
            f.write(contract(rng, kind, planted, fname))
    with open(os.path.join(out, "planted.tsv"), "w", encoding="utf-8") as f:
        for kind_, value, fname in planted:
            f.write(f"{kind_}\t{value}\t{fname}\n")


if __name__ == "__main__":
    main()
