//! The named-action parser and renderer: any template and any request words.
//!
//! Input: template words, then a 0xFF byte, then request words; words are
//! separated by newlines. Whatever they are, parsing and rendering must not
//! panic, and a rendered argv has exactly the template's word count.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tetherd::access::actions::Template;

fn words(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split('\n')
        .map(str::to_owned)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let (template, request) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let template_words = words(template);
    if let Ok(parsed) = Template::parse(&template_words) {
        let args = if request.is_empty() {
            Vec::new()
        } else {
            words(request)
        };
        if let Ok(argv) = parsed.render(&args) {
            assert_eq!(argv.len(), template_words.len());
        }
    }
});
