"""Builds seeds/libya-sirte.html: the seed article inside a real news page's furniture.

The text is the real scraped article (000_5789ac1c2e1f81f5.txt); around it stand what
such sites serve: the JavaScript notice, a nav bar, a most-read sidebar that names Haftar
(boilerplate that must not be matched as article text), and the "المزيد من العالم العربي"
link list. Run: python seeds/build_page.py
"""

from __future__ import annotations

import html
from pathlib import Path

HERE = Path(__file__).parent
SEED = HERE / "000_5789ac1c2e1f81f5.txt"


def build() -> str:
    lines = [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    notice, headline, standfirst, *body = lines
    more = body.pop()  # "المزيد من العالم العربي"
    paragraphs = "\n".join(f"      <p>{html.escape(p)}</p>" for p in body)
    return f"""<!DOCTYPE html>
<html lang="ar" dir="rtl">
<head>
  <meta charset="utf-8">
  <title>{html.escape(headline)} | اندبندنت عربية</title>
  <meta property="og:title" content="{html.escape(headline)}">
  <script>window.dataLayer = window.dataLayer || []; function gtag(){{dataLayer.push(arguments);}}</script>
  <style>body {{ font-family: sans-serif; }} .js-notice {{ color: red; }}</style>
</head>
<body>
  <div class="js-notice"><p>{html.escape(notice)}</p></div>
  <noscript>{html.escape(notice)}</noscript>
  <header class="site-header">
    <a href="/">اندبندنت عربية</a>
    <nav class="main-nav"><ul>
      <li><a href="/politics">سياسة</a></li><li><a href="/arab-world">العالم العربي</a></li>
      <li><a href="/economy">اقتصاد</a></li><li><a href="/sport">رياضة</a></li>
    </ul></nav>
  </header>
  <main>
    <article>
      <h1>{html.escape(headline)}</h1>
      <h2 class="standfirst">{html.escape(standfirst)}</h2>
      <div class="share-bar"><a href="#">فيسبوك</a> <a href="#">تويتر</a> <a href="#">واتساب</a></div>
{paragraphs}
    </article>
    <section class="more-from">
      <h3>{html.escape(more)}</h3>
      <ul>
        <li><a href="/a/1">حفتر يلتقي وفدا أوروبيا في بنغازي</a></li>
        <li><a href="/a/2">تونس تعلن إجراءات جديدة على الحدود مع ليبيا</a></li>
        <li><a href="/a/3">مصر تستضيف محادثات بشأن سد النهضة</a></li>
      </ul>
    </section>
  </main>
  <aside class="sidebar most-read">
    <h3>الأكثر قراءة</h3>
    <ol><li><a href="/a/4">من هو خليفة حفتر؟</a></li><li><a href="/a/5">سرت: المدينة التي يتنازع عليها الجميع</a></li></ol>
  </aside>
  <footer class="site-footer"><p>© 2020 اندبندنت عربية. جميع الحقوق محفوظة.</p></footer>
</body>
</html>
"""


if __name__ == "__main__":
    (HERE / "libya-sirte.html").write_text(build(), encoding="utf-8")
