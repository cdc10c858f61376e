#!/usr/bin/python3
"""tests/extract/mkdocs.py OUTDIR — writes real documents with planted PII and
secrets, plus hostile files, for t_extract.sh.

Documents are made by the format's own libraries (python-docx, openpyxl,
odfpy, reportlab, the email package; qpdf encrypts); what those libraries
cannot write (tracked changes, Word comments, PPTX: no python-pptx in Debian)
is added as the format's XML, the way Word and PowerPoint write it.

OUTDIR/expect.tsv lists, per file, each planted value and where it must show:
  always  in the text, with and without --drop-metadata
  meta    in the text only without --drop-metadata
  never   never in the text (scripts, styles)
Hostile files are listed in OUTDIR/hostile.tsv: file, then a word the
refusal reason must contain.
"""
import io
import os
import subprocess
import sys
import zipfile
from email.message import EmailMessage

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
expect = []


def plant(fname, where, value):
    expect.append((fname, where, value))


def path(name):
    return os.path.join(out, name)


def rewrite_zip(name, edits, extra=None):
    """Rewrite members of a zip in place: edits maps member -> fn(str) -> str."""
    src = zipfile.ZipFile(path(name))
    items = [(i, src.read(i.filename)) for i in src.infolist()]
    src.close()
    with zipfile.ZipFile(path(name), "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            if info.filename in edits:
                data = edits[info.filename](data.decode("utf-8")).encode("utf-8")
            z.writestr(info, data)
        for member, data in (extra or {}).items():
            z.writestr(member, data)


# ---- DOCX ------------------------------------------------------------------
def make_docx():
    import docx
    d = docx.Document()
    f = "contract.docx"
    d.core_properties.author = "Author Alice Metadata"
    d.core_properties.title = "Title ACME-TITLE-7731"
    d.core_properties.comments = "property comment sk_live_PROPERTY4242"
    plant(f, "meta", "Author Alice Metadata")
    plant(f, "meta", "ACME-TITLE-7731")
    plant(f, "meta", "sk_live_PROPERTY4242")
    sec = d.sections[0]
    sec.header.paragraphs[0].text = "header-ssn 219-09-9999"
    sec.footer.paragraphs[0].text = "footer-mail footer.person@example.com"
    plant(f, "always", "219-09-9999")
    plant(f, "always", "footer.person@example.com")
    d.add_heading("Service agreement", 1)
    d.add_paragraph("This contract is made with Jane Roe, SSN 078-05-1120, of Springfield.")
    plant(f, "always", "078-05-1120")
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text = "Card"
    t.cell(0, 1).text = "4111 1111 1111 1111"
    t.cell(1, 0).text = "IBAN"
    t.cell(1, 1).text = "DE89 3704 0044 0532 0130 00"
    plant(f, "always", "4111 1111 1111 1111")
    plant(f, "always", "DE89 3704 0044 0532 0130 00")
    d.add_paragraph("TRACKED_PLACEHOLDER")
    for i in range(3):
        d.add_paragraph(f"Clause {i + 1}: the parties agree to the terms of schedule {i + 1}.")
    d.save(path(f))
    W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    tracked = (
        '<w:p><w:r><w:t xml:space="preserve">Payment to </w:t></w:r>'
        '<w:ins w:id="1" w:author="Reviewer Ivan" w:date="2026-01-02T00:00:00Z"><w:r>'
        '<w:t>inserted-text INS-778899</w:t></w:r></w:ins>'
        '<w:del w:id="2" w:author="Reviewer Bob" w:date="2026-01-02T00:00:00Z"><w:r>'
        '<w:delText>deleted-ssn 536-22-1234</w:delText></w:r></w:del>'
        '<w:commentRangeStart w:id="0"/><w:r><w:t> see note</w:t></w:r><w:commentRangeEnd w:id="0"/>'
        '<w:r><w:commentReference w:id="0"/></w:r></w:p>'
    )
    plant(f, "always", "INS-778899")
    plant(f, "meta", "536-22-1234")
    plant(f, "meta", "Reviewer Bob")
    comments = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:comments {W}>'
        '<w:comment w:id="0" w:author="Commenter Carol" w:initials="CC">'
        '<w:p><w:r><w:t>comment-text AKIACOMMENT00000042</w:t></w:r></w:p></w:comment></w:comments>'
    )
    plant(f, "meta", "AKIACOMMENT00000042")
    plant(f, "meta", "Commenter Carol")

    def edit_doc(xml):
        i = xml.index("TRACKED_PLACEHOLDER")
        start = xml.rindex("<w:p>", 0, i) if "<w:p>" in xml[:i] else xml.rindex("<w:p ", 0, i)
        end = xml.index("</w:p>", i) + len("</w:p>")
        return xml[:start] + tracked + xml[end:]

    def edit_types(xml):
        return xml.replace("</Types>", '<Override PartName="/word/comments.xml" ContentType="application/'
                           'vnd.openxmlformats-officedocument.wordprocessingml.comments+xml"/></Types>')

    def edit_rels(xml):
        return xml.replace("</Relationships>", '<Relationship Id="rIdC1" Type="http://schemas.openxmlformats.org/'
                           'officeDocument/2006/relationships/comments" Target="comments.xml"/></Relationships>')

    rewrite_zip(f, {"word/document.xml": edit_doc, "[Content_Types].xml": edit_types,
                    "word/_rels/document.xml.rels": edit_rels}, {"word/comments.xml": comments})


# ---- XLSX ------------------------------------------------------------------
def make_xlsx():
    import openpyxl
    from openpyxl.comments import Comment
    f = "payroll.xlsx"
    wb = openpyxl.Workbook()
    wb.properties.creator = "Creator Erin Metadata"
    plant(f, "meta", "Creator Erin Metadata")
    ws = wb.active
    ws.title = "Payroll Jane Roe"
    plant(f, "always", "Payroll Jane Roe")
    ws.append(["Name", "SSN", "Email", "Salary"])
    ws.append(["Jane Roe", "078-05-1120", "jane.roe@example.com", 123456])
    ws.append(["John Poe", "219-09-9999", "john.poe@example.com", 98765])
    plant(f, "always", "078-05-1120")
    plant(f, "always", "jane.roe@example.com")
    plant(f, "always", "123456")
    ws["F1"] = '="formula-secret-"&"FORMULA42"'
    plant(f, "always", "FORMULA42")
    ws.oddHeader.center.text = "xlsx-header HDR-555"
    plant(f, "always", "HDR-555")
    ws["B2"].comment = Comment("cell-comment CMT-321", "Commenter Dave")
    plant(f, "meta", "CMT-321")
    hidden = wb.create_sheet("Hidden Sheet XYZ-404")
    hidden.sheet_state = "hidden"
    hidden["A1"] = "hidden-cell 4111-1111-1111-1111"
    plant(f, "always", "XYZ-404")
    plant(f, "always", "4111-1111-1111-1111")
    wb.save(path(f))


# ---- PPTX (XML as PowerPoint writes it) ------------------------------------
def make_pptx():
    f = "deck.pptx"
    P = ('xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
         'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
         'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"')
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/ppt/presentation.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.presentationml.presentation.main+xml"/>'
          '<Override PartName="/ppt/slides/slide1.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.presentationml.slide+xml"/>'
          '<Override PartName="/ppt/slides/slide2.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.presentationml.slide+xml"/>'
          '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.'
          'core-properties+xml"/></Types>')

    def slide(texts):
        paras = "".join(f"<a:p><a:r><a:t>{t}</a:t></a:r></a:p>" for t in texts)
        return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<p:sld {P}><p:cSld><p:spTree>'
                f'<p:sp><p:txBody><a:bodyPr/>{paras}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>')

    notes = (f'<?xml version="1.0" encoding="UTF-8"?>\n<p:notes {P}><p:cSld><p:spTree><p:sp><p:txBody>'
             '<a:p><a:r><a:t>speaker-note NOTE-222 call 555-0100</a:t></a:r></a:p>'
             '</p:txBody></p:sp></p:spTree></p:cSld></p:notes>')
    comments = (f'<?xml version="1.0" encoding="UTF-8"?>\n<p:cmLst {P}><p:cm authorId="0" idx="1">'
                '<p:pos x="10" y="10"/><p:text>slide-comment PCM-333</p:text></p:cm></p:cmLst>')
    authors = (f'<?xml version="1.0" encoding="UTF-8"?>\n<p:cmAuthorLst {P}>'
               '<p:cmAuthor id="0" name="Presenter Frank" initials="PF" lastIdx="1" clrIdx="0"/></p:cmAuthorLst>')
    core = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties '
            'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Deck Author Gina</dc:creator>'
            '</cp:coreProperties>')
    with zipfile.ZipFile(path(f), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", ct)
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="ppt/presentation.xml"/></Relationships>')
        z.writestr("ppt/presentation.xml", f'<?xml version="1.0"?><p:presentation {P}><p:sldIdLst>'
                   '<p:sldId id="256" r:id="rId2"/><p:sldId id="257" r:id="rId3"/></p:sldIdLst></p:presentation>')
        z.writestr("ppt/slides/slide1.xml", slide(["Quarterly review", "Customer: Jane Roe, SSN 078-05-1120"]))
        z.writestr("ppt/slides/slide2.xml", slide(["Key: AKIASLIDE000000042"]))
        z.writestr("ppt/notesSlides/notesSlide1.xml", notes)
        z.writestr("ppt/comments/comment1.xml", comments)
        z.writestr("ppt/commentAuthors.xml", authors)
        z.writestr("docProps/core.xml", core)
    plant(f, "always", "078-05-1120")
    plant(f, "always", "AKIASLIDE000000042")
    plant(f, "meta", "NOTE-222")
    plant(f, "meta", "PCM-333")
    plant(f, "meta", "Presenter Frank")
    plant(f, "meta", "Deck Author Gina")


# ---- ODT / ODS ---------------------------------------------------------------
def make_odf():
    from odf import dc, meta, office, style, table, text
    from odf.opendocument import OpenDocumentSpreadsheet, OpenDocumentText
    f = "letter.odt"
    d = OpenDocumentText()
    d.meta.addElement(dc.Creator(text="ODT Author Hank"))
    d.meta.addElement(dc.Title(text="odt-title ODTT-808"))
    d.meta.addElement(meta.UserDefined(name="Client", text="custom-prop CUST-909"))
    plant(f, "meta", "ODT Author Hank")
    plant(f, "meta", "ODTT-808")
    plant(f, "meta", "CUST-909")
    pl = style.PageLayout(name="pm1")
    d.automaticstyles.addElement(pl)
    mp = style.MasterPage(name="Standard", pagelayoutname=pl)
    h = style.Header()
    h.addElement(text.P(text="odt-header 219-09-9999"))
    mp.addElement(h)
    ft = style.Footer()
    ft.addElement(text.P(text="odt-footer footer.odt@example.com"))
    mp.addElement(ft)
    d.masterstyles.addElement(mp)
    plant(f, "always", "219-09-9999")
    plant(f, "always", "footer.odt@example.com")
    tc = text.TrackedChanges()
    from odf.namespaces import TEXTNS
    cr = text.ChangedRegion(check_grammar=False)  # odfpy cannot take text:id as a keyword
    cr.setAttrNS(TEXTNS, "id", "ct1")
    de = text.Deletion()
    ci = office.ChangeInfo()
    ci.addElement(dc.Creator(text="Editor Iris"))
    ci.addElement(dc.Date(text="2026-01-01T00:00:00"))
    de.addElement(ci)
    de.addElement(text.P(text="odt-deleted 536-22-1234"))
    cr.addElement(de)
    tc.addElement(cr)
    d.text.addElement(tc)
    plant(f, "meta", "536-22-1234")
    plant(f, "meta", "Editor Iris")
    p = text.P(text="Dear Jane Roe, your SSN 078-05-1120 is on file.")
    ann = office.Annotation()
    ann.addElement(dc.Creator(text="Annotator Jack"))
    ann.addElement(text.P(text="odt-comment ODC-606"))
    p.addElement(ann)
    d.text.addElement(p)
    plant(f, "always", "078-05-1120")
    plant(f, "meta", "ODC-606")
    plant(f, "meta", "Annotator Jack")
    t = table.Table(name="Accounts")
    for row in (("Card", "4111 1111 1111 1111"), ("Mail", "jane.roe@example.com")):
        tr = table.TableRow()
        for cell in row:
            c = table.TableCell()
            c.addElement(text.P(text=cell))
            tr.addElement(c)
        t.addElement(tr)
    d.text.addElement(t)
    plant(f, "always", "4111 1111 1111 1111")
    plant(f, "always", "jane.roe@example.com")
    d.save(path(f))

    f = "customers.ods"
    s = OpenDocumentSpreadsheet()
    s.meta.addElement(dc.Creator(text="ODS Author Kim"))
    plant(f, "meta", "ODS Author Kim")
    t = table.Table(name="Customers Jane Roe")
    plant(f, "always", "Customers Jane Roe")
    for row in (("Name", "SSN"), ("Jane Roe", "078-05-1120"), ("John Poe", "219-09-9999")):
        tr = table.TableRow()
        for cell in row:
            c = table.TableCell(valuetype="string")
            c.addElement(text.P(text=cell))
            tr.addElement(c)
        t.addElement(tr)
    tr = table.TableRow()
    c = table.TableCell(valuetype="float", value="4242")
    c.addElement(text.P(text="4242"))
    ann = office.Annotation()
    ann.addElement(text.P(text="ods-comment ODSC-717"))
    c.addElement(ann)
    tr.addElement(c)
    t.addElement(tr)
    s.spreadsheet.addElement(t)
    s.spreadsheet.addElement(table.Table(name="Second XYZ-515"))
    plant(f, "always", "078-05-1120")
    plant(f, "always", "219-09-9999")
    plant(f, "always", "XYZ-515")
    plant(f, "meta", "ODSC-717")
    s.save(path(f))


# ---- PDF ---------------------------------------------------------------------
def make_pdf():
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas
    f = "contract.pdf"
    c = canvas.Canvas(path(f), pagesize=A4)
    c.setAuthor("PDF Author Liam")
    c.setTitle("pdf-title PDFT-123")
    c.setSubject("pdf-subject PDFS-456")
    plant(f, "meta", "PDF Author Liam")
    plant(f, "meta", "PDFT-123")
    plant(f, "meta", "PDFS-456")
    c.drawString(72, 800, "Master services agreement")
    c.drawString(72, 780, "Client: Jane Roe, SSN 078-05-1120")
    c.drawString(72, 760, "Card on file: 4111 1111 1111 1111")
    c.textAnnotation("pdf-annotation PANN-789", Rect=(72, 700, 200, 720))
    plant(f, "always", "078-05-1120")
    plant(f, "always", "4111 1111 1111 1111")
    plant(f, "meta", "PANN-789")
    c.showPage()
    c.drawString(72, 800, "Page two: contact jane.roe@example.com")
    plant(f, "always", "jane.roe@example.com")
    c.showPage()
    c.save()

    # hostile: image-only (a "scan": only drawn shapes, no text objects)
    c = canvas.Canvas(path("scan.pdf"), pagesize=A4)
    for i in range(40):
        c.rect(50 + i * 10, 400 + (i % 7) * 12, 8, 30, fill=1)
    c.showPage()
    c.save()
    # hostile: encrypted with a user password
    subprocess.run(["qpdf", "--encrypt", "user-pw", "owner-pw", "256", "--", path(f), path("encrypted.pdf")],
                   check=True)
    data = open(path(f), "rb").read()
    open(path("truncated.pdf"), "wb").write(data[:200])


# ---- RTF, HTML, e-mail ---------------------------------------------------------
def make_text_formats():
    f = "memo.rtf"
    rtf = (r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times New Roman;}}{\colortbl;\red0\green0\blue0;}"
           r"{\info{\title rtf-title RTFT-111}{\author RTF Author Mona}{\doccomm rtf-doccomm RTFC-222}}"
           r"{\header\pard header-ssn 219-09-9999\par}"
           r"\pard\plain Memo for Jane Roe, SSN 078-05-1120.\par "
           r"Caf\'e9 na\u239?ve \u8364? price\par "
           r"{\*\annotation annotation-text RTFA-333}"
           r"{\pict\pngblip 89504e470d0a1a0a PICT-SHOULD-NOT-APPEAR}"
           r"{\deleted deleted-rtf 536-22-1234}\plain Visible again RTFV-444.\par"
           r"\trowd\cellx2000\cellx4000 Card\cell 4111 1111 1111 1111\cell\row}")
    open(path(f), "w").write(rtf)
    plant(f, "always", "078-05-1120")
    plant(f, "always", "219-09-9999")
    plant(f, "always", "Café naïve €")
    plant(f, "always", "RTFV-444")
    plant(f, "always", "4111 1111 1111 1111")
    plant(f, "meta", "RTFT-111")
    plant(f, "meta", "RTF Author Mona")
    plant(f, "meta", "RTFC-222")
    plant(f, "meta", "RTFA-333")
    plant(f, "meta", "536-22-1234")
    plant(f, "never", "PICT-SHOULD-NOT-APPEAR")

    f = "page.html"
    html = """<!DOCTYPE html>
<html><head><title>html-title HTMLT-101</title>
<meta name="author" content="HTML Author Nora">
<style>body { background: url('STYLE-SHOULD-NOT-APPEAR') }</style>
<script>var key = "SCRIPT-SHOULD-NOT-APPEAR";</script></head>
<body><!-- html-comment HTMLC-202 -->
<h1>Customer record</h1><p>Jane Roe, SSN 078-05-1120, <b>jane.roe@example.com</b></p>
<table><tr><td>Card</td><td>4111 1111 1111 1111</td></tr></table>
<img src="x.png" alt="badge of HTMLALT-303">
<form><input type="hidden" name="token" value="HTMLINPUT-404"></form>
</body></html>"""
    open(path(f), "w").write(html)
    plant(f, "always", "HTMLT-101")
    plant(f, "always", "078-05-1120")
    plant(f, "always", "jane.roe@example.com")
    plant(f, "always", "4111 1111 1111 1111")
    plant(f, "always", "HTMLALT-303")
    plant(f, "always", "HTMLINPUT-404")
    plant(f, "meta", "HTML Author Nora")
    plant(f, "meta", "HTMLC-202")
    plant(f, "never", "SCRIPT-SHOULD-NOT-APPEAR")
    plant(f, "never", "STYLE-SHOULD-NOT-APPEAR")

    f = "mail.eml"
    m = EmailMessage()
    m["From"] = "Olga Sender <olga.sender@example.com>"
    m["To"] = "Paul Receiver <paul.receiver@example.com>"
    m["Cc"] = "quinn.copy@example.com"
    m["Subject"] = "Onboarding für Jane Roe SUBJ-505"
    m.set_content("Hello,\nJane's SSN is 078-05-1120 and her card 4111 1111 1111 1111.\n")
    m.add_alternative("<html><body><p>Hello, HTML copy ALT-SHOULD-NOT-DUPLICATE</p></body></html>",
                      subtype="html")
    m.add_attachment(open(path("contract.docx"), "rb").read(), maintype="application",
                     subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                     filename="contract.docx")
    m.add_attachment(open(path("contract.pdf"), "rb").read(), maintype="application", subtype="octet-stream",
                     filename="scan0001.bin")
    plant(f, "always", "Page two: contact jane.roe@example.com")  # from the attached PDF
    m.add_attachment("name,ssn\nJane Roe,SSN 536-22-1234 CSVATT-77\n", subtype="csv", filename="people.csv")
    plant(f, "always", "CSVATT-77")  # a text attachment is text
    m.add_attachment(b"\x89PNG\r\n\x1a\nBINARY-SHOULD-NOT-APPEAR", maintype="image", subtype="png",
                     filename="logo.png")
    open(path(f), "wb").write(bytes(m))
    plant(f, "always", "Onboarding für Jane Roe SUBJ-505")
    plant(f, "always", "078-05-1120")
    plant(f, "always", "4111 1111 1111 1111")
    plant(f, "always", "footer.person@example.com")  # from the attached DOCX
    plant(f, "meta", "olga.sender@example.com")
    plant(f, "meta", "paul.receiver@example.com")
    plant(f, "meta", "quinn.copy@example.com")
    plant(f, "never", "BINARY-SHOULD-NOT-APPEAR")
    plant(f, "never", "ALT-SHOULD-NOT-DUPLICATE")


# ---- hostile zips ----------------------------------------------------------------
def make_hostile():
    hostile = []
    data = open(path("contract.docx"), "rb").read()
    open(path("truncated.docx"), "wb").write(data[: len(data) // 2])
    hostile.append(("truncated.docx", "zip"))
    # the first members intact (libmagic and the zip reader see a DOCX), then noise
    open(path("corrupt.docx"), "wb").write(data[:1500] + bytes(range(256)) * 8 + data[-200:])
    hostile.append(("corrupt.docx", "zip"))

    W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'

    def docx_with(name, document_xml_writer):
        with zipfile.ZipFile(path(name), "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.'
                       'org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType='
                       '"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
            with z.open("word/document.xml", "w", force_zip64=True) as m:
                document_xml_writer(m)

    def bomb(m):  # 200 MB of blanks inside one paragraph: deflates to ~200 KB
        m.write(f'<w:document {W}><w:body><w:p><w:r><w:t>'.encode())
        chunk = b" " * (1 << 20)
        for _ in range(200):
            m.write(chunk)
        m.write(b"</w:t></w:r></w:p></w:body></w:document>")
    docx_with("bomb.docx", bomb)
    hostile.append(("bomb.docx", "expands past limit"))

    def nested(m):
        m.write(f'<w:document {W}><w:body>'.encode())
        m.write(b"<w:p>" * 100000)
        m.write(b"<w:r><w:t>deep</w:t></w:r>")
        m.write(b"</w:p>" * 100000)
        m.write(b"</w:body></w:document>")
    docx_with("nested.docx", nested)
    hostile.append(("nested.docx", "XML"))

    def laughs(m):
        m.write(b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">')
        for i in range(1, 10):
            prev = "lol" if i == 1 else f"lol{i - 1}"
            m.write(f'<!ENTITY lol{i} "{("&" + prev + ";") * 10}">'.encode())
        m.write(f']>\n<w:document {W}><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>'
                .encode())
    docx_with("laughs.docx", laughs)
    hostile.append(("laughs.docx", "DTD"))

    # shared-string amplification: 3000 cells, each the same 100 KB string
    # (300 MB of text from a zip of a few KB): the output limit refuses it
    X = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    with zipfile.ZipFile(path("amplify.xlsx"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"/>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook {X} {R}><sheets>'
                   '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="x" '
                   'Target="worksheets/sheet1.xml"/></Relationships>')
        z.writestr("xl/sharedStrings.xml", f'<?xml version="1.0"?><sst {X}><si><t>{"A" * 100000}</t></si></sst>')
        cells = '<c t="s"><v>0</v></c>' * 100
        rows = "".join(f"<row>{cells}</row>" for _ in range(30))
        z.writestr("xl/worksheets/sheet1.xml", f'<?xml version="1.0"?><worksheet {X}><sheetData>{rows}'
                   '</sheetData></worksheet>')
    hostile.append(("amplify.xlsx", "output limit"))
    # ODS repeat counts: a million rows of 16384 columns, written once. Not
    # hostile to us (repeats are never expanded): it must extract, small.
    O = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
         'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
         'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
    with zipfile.ZipFile(path("repeat.ods"), "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", f'<?xml version="1.0"?><office:document-content {O}><office:body>'
                   '<office:spreadsheet><table:table table:name="Big">'
                   '<table:table-row table:number-rows-repeated="1048576">'
                   '<table:table-cell table:number-columns-repeated="16384"><text:p>REPEATED-CELL</text:p>'
                   '</table:table-cell></table:table-row></table:table></office:spreadsheet></office:body>'
                   '</office:document-content>')

    hostile.append(("encrypted.pdf", "encrypted"))
    hostile.append(("scan.pdf", "no text layer"))
    hostile.append(("truncated.pdf", "PDF"))
    open(path("truncated.rtf"), "w").write(r"{\rtf1\ansi {\b unfinished memo 078-05-1120")
    hostile.append(("truncated.rtf", "truncated RTF"))
    open(path("deep.rtf"), "w").write(r"{\rtf1" + "{" * 5000 + "x" + "}" * 5000 + "}")
    hostile.append(("deep.rtf", "nested deeper"))
    with open(path("hostile.tsv"), "w") as h:
        for name, word in hostile:
            h.write(f"{name}\t{word}\n")


make_docx()
make_xlsx()
make_pptx()
make_odf()
make_pdf()
make_text_formats()
make_hostile()
with open(path("expect.tsv"), "w") as e:
    for fname, where, value in expect:
        e.write(f"{fname}\t{where}\t{value}\n")
