//! What a send and a verify cost in our own code, without I/O: drawing a
//! code, its keyed digest, and the constant-time comparison.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use otp_edge::domain::channel::Channel;
use otp_edge::domain::code::{digests_match, Code, CodeKey, CodeSpec, Pepper, CORE_SCOPE};

fn codes(c: &mut Criterion) {
    let pepper = Pepper::new("bench-pepper-0123456789abcdef0123456789abcdef").unwrap();
    let key = CodeKey {
        scope: CORE_SCOPE,
        channel: Channel::Email,
        purpose: "verify_email",
        address: "someone@example.com",
    };
    let spec = CodeSpec::digits(6);
    let stored = pepper.code_digest(&key, &Code::generate(spec).unwrap());
    c.bench_function("code_generate_digest_compare", |b| {
        b.iter(|| {
            let code = Code::generate(black_box(spec)).unwrap();
            let digest = pepper.code_digest(black_box(&key), &code);
            black_box(digests_match(&stored, &digest))
        })
    });
}

criterion_group!(benches, codes);
criterion_main!(benches);
