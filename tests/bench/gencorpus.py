#!/usr/bin/env python3
"""tests/bench/gencorpus.py SIZE_MB OUT [--rate R] [--seed N]

Writes a deterministic corpus of document-like text for the DLP benchmark:
prose paragraphs with names, dates and amounts, code snippets, config
files, log excerpts and CSV tables, in sections like a directory of company
documents. About 1% of lines (--rate, default 0.01) carry one planted
finding of one of many rule kinds (e-mail, phones, SSN, NINO, IBAN, cards,
IPs, dates of birth and passports in context, and some thirty credential
formats); the innocent text is built to carry none.

OUT gets the corpus (SIZE_MB * 10^6 bytes, rounded up to a whole line);
OUT.count gets `planted N` on its first line, then `KIND N` per kind. The
same arguments always give the same bytes (seeded PRNG, Python stdlib only).
It never writes anything but OUT and OUT.count.
"""
import argparse
import base64
import math
import random
import string
import sys
from collections import Counter

B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
B62 = string.ascii_letters + string.digits
B64 = B62 + '+/'
URLSAFE = B62 + '_-'
HEX = '0123456789abcdef'

FIRST = ['Ana', 'Maria', 'James', 'Priya', 'Tom', 'Lena', 'Sam', 'Noah', 'Emma', 'Lucas', 'Mia',
         'Oliver', 'Sofia', 'Elias', 'Hannah', 'Mateo', 'Chloe', 'Arjun', 'Yuki', 'Fatima',
         'Jonas', 'Clara', 'Omar', 'Ines', 'Pavel', 'Greta', 'Luis', 'Aiko', 'Kofi', 'Nora']
LAST = ['Lopez', 'Schmidt', 'Connor', 'Raman', 'Becker', 'Fischer', 'Okafor', 'Meyer', 'Rossi',
        'Dubois', 'Novak', 'Tanaka', 'Silva', 'Jensen', 'Kowalski', 'Haddad', 'Nguyen', 'Weber',
        'Moreau', 'Costa', 'Larsen', 'Ivanova', 'Mensah', 'Sato', 'Kaya', 'Berg', 'Quinn']
DEPTS = ['finance', 'legal', 'platform', 'sales', 'support', 'research', 'operations', 'design',
         'procurement', 'security', 'data', 'marketing']
DOCS = ['quarterly report', 'supplier contract', 'migration plan', 'incident review',
        'budget draft', 'release notes', 'onboarding guide', 'capacity forecast', 'audit summary',
        'pricing proposal', 'service agreement', 'roadmap', 'postmortem', 'design review']
CITIES = ['Berlin', 'Lisbon', 'Leeds', 'Lyon', 'Madrid', 'Oslo', 'Warsaw', 'Osaka', 'Accra',
          'Toronto', 'Denver', 'Porto', 'Vienna', 'Malmo', 'Turin', 'Ghent']
CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'SEK']
MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
          'September', 'October', 'November', 'December']
VERBS = ['reviewed', 'approved', 'updated', 'rejected', 'summarised', 'circulated', 'signed off',
         'questioned', 'reworked', 'archived', 'split up', 'merged']
# Prose words: none holds a context word of a rule (aws, secret, born, birth,
# dob, passport, heroku, twilio, auth token...), so innocent text stays clean.
WORDS = ('the team agreed to move the deadline after the review because several open items '
         'needed more time and the budget owner asked for a clearer plan with milestones costs '
         'risks and a fallback option while the vendor confirmed delivery of the remaining '
         'parts within the quarter and support volumes stayed within the expected range for '
         'most regions although one warehouse reported delays caused by weather and staffing '
         'gaps that were covered by temporary contractors during the peak weeks of the season').split()


def luhn_complete(prefix, length, r):
    digits = [int(c) for c in prefix] + [r.randrange(10) for _ in range(length - len(prefix) - 1)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return ''.join(map(str, digits)) + str((10 - total % 10) % 10)


def iban_de(r):
    bban = ''.join(r.choice(string.digits) for _ in range(18))
    num = int(''.join(str(int(c, 36)) for c in bban + 'DE00'))
    check = 98 - num % 97
    s = 'DE%02d%s' % (check, bban)
    return ' '.join(s[i:i + 4] for i in range(0, len(s), 4))


def entropy(s):
    c = Counter(s)
    return -sum(v / len(s) * math.log2(v / len(s)) for v in c.values())


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def s(self, n, alphabet=B62):
        return ''.join(self.r.choices(alphabet, k=n))

    def hi_entropy(self, n, alphabet, bits):
        while True:
            v = self.s(n, alphabet)
            if entropy(v) >= bits:
                return v

    def name(self):
        return '%s %s' % (self.r.choice(FIRST), self.r.choice(LAST))

    def date(self):
        return '%d-%02d-%02d' % (self.r.randint(2019, 2025), self.r.randint(1, 12), self.r.randint(1, 28))

    def amount(self):
        return '%s %s.%02d' % (self.r.choice(CURRENCIES), format(self.r.randint(10, 250000), ','),
                               self.r.randint(0, 99))

    # ---- innocent lines, by section kind -------------------------------------
    def prose(self):
        r = self.r
        k = r.randrange(6)
        if k == 0:
            return '%s from the %s team %s the %s on %s and asked for %s more.' % (
                self.name(), r.choice(DEPTS), r.choice(VERBS), r.choice(DOCS), self.date(), self.amount())
        if k == 1:
            return 'In %s %d the %s office in %s spent %s on travel, %d%% below plan.' % (
                r.choice(MONTHS), r.randint(2019, 2025), r.choice(DEPTS), r.choice(CITIES),
                self.amount(), r.randint(1, 40))
        if k == 2:
            return 'See section %d.%d of the %s (version %d.%d) for the open questions.' % (
                r.randint(1, 12), r.randint(1, 9), r.choice(DOCS), r.randint(1, 5), r.randint(0, 9))
        n = r.randint(9, 16)
        words = r.choices(WORDS, k=n)
        return words[0].capitalize() + ' ' + ' '.join(words[1:]) + r.choice(['.', '.', ',', ';', ':'])

    def code(self):
        r = self.r
        v = r.choice(['total', 'count', 'items', 'rows', 'batch', 'offset', 'limit', 'result'])
        return r.choice([
            '    %s = compute_%s(%s, limit=%d)' % (v, r.choice(DEPTS), v, r.randint(1, 500)),
            '    if %s > %d:\n        return None' % (v, r.randint(1, 1000)),
            'def handle_%s(request, %s):' % (r.choice(DEPTS), v),
            '    for i in range(%d):\n        %s += step(i)' % (r.randint(2, 64), v),
            'const %s = await fetch(`/api/v%d/%s?page=${page}`);' % (v, r.randint(1, 3), r.choice(DEPTS)),
            'static int %s_%s(const struct ctx *c, size_t n) { return n > %d ? -EINVAL : 0; }' % (
                r.choice(DEPTS), v, r.randint(1, 4096)),
            'SELECT id, amount, created_at FROM %s WHERE created_at > \'%s\' LIMIT %d;' % (
                r.choice(DEPTS), self.date(), r.randint(10, 1000)),
            '    // keep the %s sorted: the merge below relies on it' % v,
        ])

    def config(self):
        r = self.r
        return r.choice([
            '  timeout_ms: %d' % r.randint(100, 60000),
            '  replicas: %d' % r.randint(1, 12),
            '  region: %s' % r.choice(['eu-west-1', 'eu-central-1', 'us-east-2', 'ap-northeast-1']),
            '  log_level: %s' % r.choice(['debug', 'info', 'warn', 'error']),
            '  queue: %s-%s' % (r.choice(DEPTS), r.choice(['events', 'jobs', 'mail'])),
            '  image: registry.example.com/%s:%d.%d.%d' % (r.choice(DEPTS), r.randint(1, 9),
                                                         r.randint(0, 30), r.randint(0, 99)),
            'feature.%s.enabled = %s' % (r.choice(DEPTS), r.choice(['true', 'false'])),
            '%s:' % r.choice(['service', 'database', 'cache', 'worker', 'scheduler']),
        ])

    def log(self):
        r = self.r
        return '%sT%02d:%02d:%02d.%03dZ %s [%s-%d] %s %d items in %d.%02d s (queue=%s)' % (
            self.date(), r.randint(0, 23), r.randint(0, 59), r.randint(0, 59), r.randint(0, 999),
            r.choice(['INFO ', 'DEBUG', 'WARN ']), r.choice(['worker', 'http', 'sync', 'billing']),
            r.randint(1, 8), r.choice(['processed', 'skipped', 'retried', 'queued']),
            r.randint(0, 50000), r.randint(0, 9), r.randint(0, 99), r.choice(DEPTS))

    def csv(self):
        r = self.r
        return 'INV-%s-%04d,%s,%s %s,%s,%d.%02d,%s' % (
            self.date().replace('-', ''), r.randint(1, 9999), self.date(), r.choice(LAST),
            r.choice(['GmbH', 'Ltd', 'SA', 'AB', 'Inc']), r.choice(CURRENCIES), r.randint(1, 99999),
            r.randint(0, 99), r.choice(['paid', 'open', 'overdue', 'void']))

    # ---- planted findings: (kind, line) with exactly one finding each ----------------
    def finding(self):
        r = self.r
        k = r.randrange(len(self.KINDS))
        kind = self.KINDS[k]
        return kind, getattr(self, 'f_' + kind.replace('-', '_'))()

    KINDS = ['email', 'phone-intl', 'phone-nanp', 'us-ssn', 'uk-nino', 'iban', 'payment-card',
             'payment-card-amex', 'ipv4', 'ipv6', 'date-of-birth', 'passport-number',
             'aws-access-key-id', 'aws-secret-access-key', 'github-token', 'gitlab-token',
             'slack-token', 'slack-webhook', 'stripe-secret-key', 'google-api-key', 'azure-storage-key',
             'openai-api-key', 'anthropic-api-key', 'jwt', 'pem-private-key', 'openssh-private-key',
             'uri-password', 'password-assignment', 'npm-token', 'sendgrid-api-key',
             'huggingface-token', 'twilio-api-key', 'mailgun-api-key', 'shopify-token',
             'digitalocean-token', 'docker-hub-token', 'telegram-bot-token', 'authorization-header']

    def f_email(self):
        r = self.r
        return 'Please send the signed copy to %s.%s%d@%s before Friday.' % (
            r.choice(FIRST).lower(), r.choice(LAST).lower(), r.randint(1, 99),
            r.choice(['acme-corp.example', 'mail.example.org', 'partner.example.co.uk']))

    def f_phone_intl(self):
        r = self.r
        return 'Call the %s desk on +44 20 7946 %04d if the line drops.' % (r.choice(DEPTS), r.randint(0, 9999))

    def f_phone_nanp(self):
        r = self.r
        return 'US hotline: (%d%02d) %d%02d-%04d, weekdays only.' % (
            r.randint(2, 9), r.randint(0, 99), r.randint(2, 9), r.randint(0, 99), r.randint(0, 9999))

    def f_us_ssn(self):
        r = self.r
        return 'employee record %d, ssn %03d-%02d-%04d, status active' % (
            r.randint(1, 9999), r.choice([r.randint(1, 665), r.randint(667, 899)]),
            r.randint(1, 99), r.randint(1, 9999))

    def f_uk_nino(self):
        r = self.r
        return 'NI number %s%s %02d %02d %02d %s on the payroll form.' % (
            r.choice('ABCEHJKLMPRSTWXY'), r.choice('ABCEHJKLMPRSTWXY'), r.randint(0, 99),
            r.randint(0, 99), r.randint(0, 99), r.choice('ABCD'))

    def f_iban(self):
        return 'Refund to IBAN %s within ten days.' % iban_de(self.r)

    def f_payment_card(self):
        r = self.r
        num = luhn_complete(r.choice(['4', '51', '55', '2221', '2720', '6011', '3528']), 16, r)
        sep = r.choice([' ', '-', ''])
        return 'Card on file: %s (expires %02d/%d).' % (sep.join(num[i:i + 4] for i in range(0, 16, 4)),
                                                       r.randint(1, 12), r.randint(26, 31))

    def f_payment_card_amex(self):
        num = luhn_complete(self.r.choice(['34', '37']), 15, self.r)
        return 'Corporate Amex %s %s %s for travel.' % (num[:4], num[4:10], num[10:])

    def f_ipv4(self):
        r = self.r
        return 'Connection from %d.%d.%d.%d was throttled.' % (
            r.randint(11, 223), r.randint(0, 255), r.randint(0, 255), r.randint(1, 254))

    def f_ipv6(self):
        r = self.r
        return 'Peer 2001:db8:%x:%x::%x joined the mesh.' % (r.randint(1, 0xffff), r.randint(1, 0xffff),
                                                            r.randint(1, 0xffff))

    def f_date_of_birth(self):
        r = self.r
        return 'Applicant date of birth: %02d/%02d/%d, checked by HR.' % (
            r.randint(1, 28), r.randint(1, 12), r.randint(1950, 2004))

    def f_passport_number(self):
        return 'Travel desk copy of passport no. %09d, valid.' % self.r.randint(100000000, 999999999)

    def f_aws_access_key_id(self):
        return 'export AWS_ACCESS_KEY_ID=AKIA%s' % self.s(16, B32)

    def f_aws_secret_access_key(self):
        return 'aws_secret_access_key = %s' % self.hi_entropy(40, B64, 4.5)

    def f_github_token(self):
        return 'GITHUB_TOKEN=gh%s_%s' % (self.r.choice('pousr'), self.s(36))

    def f_gitlab_token(self):
        return 'GITLAB_TOKEN=glpat-%s' % self.hi_entropy(20, URLSAFE, 3.5)

    def f_slack_token(self):
        return 'SLACK_BOT_TOKEN=xoxb-%s-%s-%s' % (self.s(12, string.digits), self.s(13, string.digits), self.s(24))

    def f_slack_webhook(self):
        return 'webhook: https://hooks.slack.com/services/T%s/B%s/%s' % (
            self.s(8, B32), self.s(10, B32), self.s(24))

    def f_stripe_secret_key(self):
        return 'STRIPE_SECRET_KEY=sk_live_%s' % self.s(24)

    def f_google_api_key(self):
        return 'maps key AIza%s in the frontend bundle' % self.s(35, URLSAFE)

    def f_azure_storage_key(self):
        key = base64.b64encode(bytes(self.r.getrandbits(8) for _ in range(64))).decode()
        return 'DefaultEndpointsProtocol=https;AccountName=acme%d;AccountKey=%s;EndpointSuffix=core.windows.net' % (
            self.r.randint(1, 99), key)

    def f_openai_api_key(self):
        return 'OPENAI_API_KEY=sk-proj-%s%d%s' % (self.s(60, URLSAFE), self.r.randint(0, 9), 'Q' + self.s(40))

    def f_anthropic_api_key(self):
        return 'ANTHROPIC_API_KEY=sk-ant-api03-%sAA' % self.s(93, URLSAFE)

    def f_jwt(self):
        head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b'=').decode()
        body = base64.urlsafe_b64encode(('{"sub":"u-%d","role":"%s"}' % (
            self.r.randint(1, 99999), self.r.choice(DEPTS))).encode()).rstrip(b'=').decode()
        return 'session cookie token=%s.%s.%s' % (head, body, self.s(43, URLSAFE))

    def f_pem_private_key(self):
        lines = [base64.b64encode(bytes(self.r.getrandbits(8) for _ in range(48))).decode() for _ in range(4)]
        return '-----BEGIN RSA PRIVATE KEY-----\n%s\n-----END RSA PRIVATE KEY-----' % '\n'.join(lines)

    def f_openssh_private_key(self):
        lines = ['b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW'] + [
            base64.b64encode(bytes(self.r.getrandbits(8) for _ in range(51))).decode() for _ in range(3)]
        return '-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----' % '\n'.join(lines)

    def f_uri_password(self):
        return 'DATABASE_URL=postgres://app:%s@db%d.internal:5432/orders' % (
            self.hi_entropy(14, B62 + '!*', 3.0), self.r.randint(1, 9))

    def f_password_assignment(self):
        # The first character is alphanumeric: a value starting with % or $
        # reads as a template and is left alone by design.
        return 'DB_PASSWORD=%s%s' % (self.r.choice(B62), self.hi_entropy(13, B62 + '!#%*', 3.0))

    def f_npm_token(self):
        return '//registry.npmjs.org/:_authToken=npm_%s' % self.s(36)

    def f_sendgrid_api_key(self):
        return 'SENDGRID_API_KEY=SG.%s.%s' % (self.s(22, URLSAFE), self.s(43, URLSAFE))

    def f_huggingface_token(self):
        return 'HF_TOKEN=hf_%s' % self.s(34)

    def f_twilio_api_key(self):
        return 'TWILIO_API_KEY=SK%s' % self.hi_entropy(32, HEX, 3.2)

    def f_mailgun_api_key(self):
        return 'MAILGUN_API_KEY=key-%s' % self.hi_entropy(32, string.ascii_lowercase + string.digits, 3.5)

    def f_shopify_token(self):
        return 'SHOPIFY_ACCESS_TOKEN=shpat_%s' % self.hi_entropy(32, HEX, 3.2)

    def f_digitalocean_token(self):
        return 'DIGITALOCEAN_TOKEN=dop_v1_%s' % self.hi_entropy(64, HEX, 3.5)

    def f_docker_hub_token(self):
        return 'DOCKERHUB_TOKEN=dckr_pat_%s' % self.hi_entropy(27, URLSAFE, 3.5)

    def f_telegram_bot_token(self):
        return 'TELEGRAM_TOKEN=%d:AA%s' % (self.r.randint(10 ** 8, 10 ** 10 - 1), self.s(33, URLSAFE))

    def f_authorization_header(self):
        return 'curl -H "Authorization: Token %s" https://api.example.com/v1/orders' % self.hi_entropy(40, B62, 4.0)


# (kind, min lines, max lines) and weights: by bytes about 64% prose, 10%
# code, 3% config, 15% logs and 8% CSV, i.e. documents rather than a log
# archive (digit-dense logs and tables are the slowest text for PII rules).
SECTIONS = [('prose', 4, 12), ('code', 4, 14), ('config', 4, 12), ('log', 5, 15), ('csv', 5, 15)]
SECTION_WEIGHTS = [60, 12, 10, 10, 8]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('size_mb', type=float)
    ap.add_argument('out')
    ap.add_argument('--rate', type=float, default=0.01, help='share of lines with a finding')
    ap.add_argument('--seed', type=int, default=20241123)
    a = ap.parse_args()
    if a.size_mb <= 0 or not 0 <= a.rate < 1:
        ap.error('size must be > 0 and rate in [0, 1)')

    g = Gen(a.seed)
    r = g.r
    # Innocent lines come from pools (generating 200 MB line by line would take
    # minutes); the pools are large enough that the text does not repeat in
    # short runs, and the planted findings are all fresh.
    pools = {kind: [getattr(g, kind)() for _ in range(40000)] for kind, _, _ in SECTIONS}
    target = int(a.size_mb * 1000000)
    counts = Counter()
    written = 0
    lines_total = 0
    with open(a.out, 'w', encoding='ascii', newline='\n') as f:
        while written < target:
            buf = []      # lines (a planted key block is one multi-line entry)
            kinds = {}    # index in buf -> kind of the finding planted there
            for _ in range(500):
                kind, lo, hi = r.choices(SECTIONS, weights=SECTION_WEIGHTS)[0]
                if kind == 'prose':
                    buf.append('')
                elif kind == 'code':
                    buf.append('```')
                for line in r.choices(pools[kind], k=r.randint(lo, hi)):
                    if r.random() < a.rate:
                        fk, fl = g.finding()
                        kinds[len(buf)] = fk
                        buf.append(fl)
                    buf.append(line)
                if kind == 'code':
                    buf.append('```')
            # Stop at the first line that reaches the target size; only the
            # findings actually written are counted.
            out = []
            for i, line in enumerate(buf):
                out.append(line)
                written += len(line) + 1
                lines_total += line.count('\n') + 1
                if i in kinds:
                    counts[kinds[i]] += 1
                if written >= target:
                    break
            f.write('\n'.join(out) + '\n')
    planted = sum(counts.values())
    with open(a.out + '.count', 'w') as f:
        f.write('planted %d\n' % planted)
        for k in sorted(counts):
            f.write('%s %d\n' % (k, counts[k]))
    print('%s: %d bytes, %d lines, %d planted findings (%.2f%% of lines), %d kinds' % (
        a.out, written, lines_total, planted, 100.0 * planted / max(lines_total, 1), len(counts)))


if __name__ == '__main__':
    sys.exit(main())
