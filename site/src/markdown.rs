//! Release notes from Markdown to HTML for the status page, safely: the notes are
//! the publisher's, but a page that runs anything they carry would let a leaked
//! release key deface every site that shows them. Raw HTML in the notes is shown as
//! text, links keep only `http`, `https`, `mailto` and relative targets, and images
//! become their description (the page loads nothing from elsewhere).

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// The notes as HTML: paragraphs, lists, emphasis, code, tables and links.
pub(crate) fn notes_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        // Raw HTML, block or inline, is shown as the text it is.
        Event::Html(text) | Event::InlineHtml(text) => Some(Event::Text(text)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Some(Event::Start(Tag::Link {
            link_type,
            dest_url: safe_target(dest_url),
            title,
            id,
        })),
        // An image is left as its description, which the parser gives as text.
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

/// `target` when it is a web, mail or relative link, else nothing (`#`).
fn safe_target(target: CowStr<'_>) -> CowStr<'_> {
    let lower = target.trim().to_ascii_lowercase();
    let scheme = lower
        .find(':')
        .filter(|colon| !lower[..*colon].contains(['/', '?', '#']))
        .map(|colon| &lower[..colon]);
    match scheme {
        None | Some("http" | "https" | "mailto") => target,
        Some(_) => CowStr::Borrowed("#"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders() {
        let html = notes_html(
            "Faster **startup**.\n\n- one\n- `two`\n\n[docs](https://example.com/a?b=1)",
        );
        assert!(html.contains("<strong>startup</strong>"));
        assert!(html.contains("<li><code>two</code></li>"));
        assert!(html.contains(r#"<a href="https://example.com/a?b=1">docs</a>"#));
    }

    #[test]
    fn html_scripts_and_foreign_links_stay_inert() {
        let html = notes_html(
            "<script>alert(1)</script>\n\nHi <img src=x onerror=alert(2)> [x](javascript:alert(3)) [y](JaVaScRiPt:alert(4)) ![z](https://tracker.example/p.png) [rel](notes/1.2.html)",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.to_ascii_lowercase().contains("javascript:"), "{html}");
        assert!(html.contains(r##"<a href="#">x</a>"##), "{html}");
        assert!(
            html.contains(r#"<a href="notes/1.2.html">rel</a>"#),
            "{html}"
        );
        assert!(html.contains('z'), "an image keeps its description: {html}");
    }
}
