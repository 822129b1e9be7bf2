//! One Argon2id hash at the parameters the service uses (OWASP's 19 MiB,
//! t=2, p=1): the floor of every register, login and reset.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use otp_edge::domain::password::{HashParams, Hasher, Password};

fn password_hash(c: &mut Criterion) {
    let hasher = Hasher::new(HashParams::OWASP);
    let password = Password::parse("correct horse battery staple", 8, "password").unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20);
    group.bench_function("hash_owasp", |b| {
        b.iter(|| black_box(hasher.hash(black_box(&password)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, password_hash);
criterion_main!(benches);
