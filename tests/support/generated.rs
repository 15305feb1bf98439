//! The generated release tree the publish and install benchmarks measure: about
//! 240 MB in 2,400 files, as [`generate_tree`] writes it.

use std::path::Path;

use crate::pseudo_random;

/// How many files [`generate_tree`] writes.
pub const FILES: usize = 2_400;

/// About 240 MB in 2,400 files over 60 folders: two thirds text-like (compresses about
/// 3:1), one third incompressible binary.
pub fn generate_tree(root: &Path) -> (usize, u64) {
    const WORDS: &[&str] = &[
        "update",
        "release",
        "manifest",
        "rollout",
        "bucket",
        "signature",
        "module",
        "package",
        "function",
        "return",
        "const",
        "static",
        "export",
        "import",
        "class",
        "struct",
        "if",
        "else",
        "for",
        "while",
        "=",
        "{",
        "}",
        "(",
        ")",
        ";",
        "\n",
        "    ",
        "0",
        "1",
        "42",
        "true",
        "false",
    ];
    let mut total = 0u64;
    for index in 0..FILES {
        let dir = root.join(format!("dir{:02}/sub{}", index % 60, index % 7));
        std::fs::create_dir_all(&dir).unwrap();
        let size = 20_000 + (index * 7_919) % 160_000;
        let content = if index % 3 == 2 {
            pseudo_random(size, index as u64)
        } else {
            let noise = pseudo_random(size, index as u64 + 1_000_000);
            let mut text = Vec::with_capacity(size + 16);
            let mut i = 0;
            while text.len() < size {
                text.extend_from_slice(
                    WORDS[usize::from(noise[i % size]) % WORDS.len()].as_bytes(),
                );
                text.push(b' ');
                i += 1;
            }
            text.truncate(size);
            text
        };
        total += content.len() as u64;
        std::fs::write(dir.join(format!("file{index:04}.dat")), content).unwrap();
    }
    (FILES, total)
}
