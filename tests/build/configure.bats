#!/usr/bin/env bats
# tests/build/configure.bats - configure fails with one clear line naming the
# Debian package to install when a dependency is missing (checked by hiding
# pkg-config's database, or presetting the uthash.h check, in a temp dir).

load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

: "${MESA_TOP_SRCDIR:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"

@test "configure without the pkg-config modules names the Debian package and fails" {
    [ -x "$MESA_TOP_SRCDIR/configure" ] || skip "configure not generated (run ./autogen.sh)"
    cd "$BATS_TEST_TMPDIR"
    run env PKG_CONFIG_LIBDIR=/nonexistent PKG_CONFIG_PATH= "$MESA_TOP_SRCDIR/configure" -q
    assert_failure
    assert_output --partial "libcrypto >= 3.0 not found: install the Debian package 'libssl-dev'"
}

@test "configure without uthash.h names uthash-dev and fails" {
    [ -x "$MESA_TOP_SRCDIR/configure" ] || skip "configure not generated (run ./autogen.sh)"
    cd "$BATS_TEST_TMPDIR"
    # autoconf's cache variable stands in for a system without the header
    run env ac_cv_header_uthash_h=no "$MESA_TOP_SRCDIR/configure" -q
    assert_failure
    assert_output --partial "install the Debian package 'uthash-dev'"
}
