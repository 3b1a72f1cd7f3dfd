#!/usr/bin/env bats
# tests/shim/libs.bats - shared libraries from the mount (DESIGN §6): the
# loader opens files with raw system calls, so libraries under /mesa are
# served by the shim's dlopen wrapper (shim/dl.c) and, for the loader's own
# searches, by the LD_AUDIT module (shim/audit.c) and its resolver
# (tools/mesafs_ldhelper.c), both on core/vfs_lib.c's mirror ($RUN/lib).
#
# Every test builds what it runs with gcc in a mounted repo (repo "libs":
# *.so and bin/ are ignored, so they stay in the mount's local store) and
# starts with an empty cache, except where it says otherwise. Checked: a
# program linked against a library of the mount runs with LD_LIBRARY_PATH,
# RUNPATH, old-style RPATH and $ORIGIN pointing into the mount, and a
# library's own dependencies are found the same way; without a search path
# it fails as natively (the loader's message, exit 127); LD_LIBRARY_PATH
# keeps the loader's order between the mount and real directories;
# dlopen of a mount path (absolute or relative to the virtual cwd) works,
# twice is one handle (after a rebuild too, as on a local disk), and a
# missing one fails as the real dlopen does; dlopen of a bare name uses the
# calling program's RUNPATH; a Python C extension built in the mount
# imports; a tracked (pushed) library loads in a second mesarun with an
# empty cache (its blob fetched); LD_AUDIT comes back after env -i; and
# MESA_AUDIT= runs a mount without the module.
#
# One private mesad for the file.

# shellcheck disable=SC2016,SC2154 # sh -c scripts take their args; $body is set by api
bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() {
    mesad_start
    mesa_env unix
    local s=$BATS_FILE_TMPDIR/src t=$BATS_FILE_TMPDIR/tracked
    mkdir -p "$s" "$t"
    printf '*.so\n/bin/\n' >"$s/.gitignore"
    cat >"$s/foo.c" <<'EOF'
#ifndef FOO
#define FOO 42
#endif
int foo(void) { return FOO; }
EOF
    cat >"$s/bar.c" <<'EOF'
int foo(void);
int bar(void) { return foo() + 1; }
EOF
    cat >"$s/main.c" <<'EOF'
#include <stdio.h>
int foo(void);
int main(void) { printf("foo=%d\n", foo()); return 0; }
EOF
    cat >"$s/mainbar.c" <<'EOF'
#include <stdio.h>
int bar(void);
int main(void) { printf("bar=%d\n", bar()); return 0; }
EOF
    # dltest ARG...: dlopen each path and call its foo ("foo=N same=S",
    # S = 1 if the handle is the first one's); an ARG "!CMD" runs CMD.
    # On failure: "NULL errno=N" and dlerror's text, exit 1.
    cat >"$s/dltest.c" <<'EOF'
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
    void *first = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '!') {
            if (system(argv[i] + 1) != 0)
                return 2;
            continue;
        }
        errno = 0;
        void *h = dlopen(argv[i], RTLD_NOW);
        if (!h) {
            int e = errno;
            printf("NULL errno=%d\n%s\n", e, dlerror());
            return 1;
        }
        first = first ? first : h;
        int (*foo)(void) = (int (*)(void))dlsym(h, "foo");
        printf("foo=%d same=%d\n", foo ? foo() : -1, h == first);
        fflush(stdout);
    }
    return 0;
}
EOF
    # a Python extension: "hello" (answer() is 42), or with -DWITH_FOO
    # "hellofoo", whose answer() calls libfoo's foo() and adds 100
    cat >"$s/hello.c" <<'EOF'
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifdef WITH_FOO
int foo(void);
#define NAME hellofoo
#define ANSWER (foo() + 100)
#else
#define NAME hello
#define ANSWER 42
#endif
#define STR2(x) #x
#define STR(x) STR2(x)
#define INIT2(n) PyInit_##n
#define INIT(n) INIT2(n)

static PyObject *answer(PyObject *self, PyObject *args)
{
    return PyLong_FromLong(ANSWER);
}

static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "The answer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, STR(NAME), NULL, -1, methods};

PyMODINIT_FUNC INIT(NAME)(void) { return PyModule_Create(&module); }
EOF
    cp "$s/foo.c" "$s/main.c" "$s/dltest.c" "$t/"
    printf '*.o\n' >"$t/.gitignore"
    mkrepo libs "$s"
    mkrepo tracked "$t"
    # natively: what a failed dlopen leaves in errno
    cc -o "$BATS_FILE_TMPDIR/dltest" "$s/dltest.c"
    NATIVE_DLOPEN_ERRNO=$("$BATS_FILE_TMPDIR/dltest" /nonexistent/libnope.so | sed -n 's/^NULL errno=//p')
    export NATIVE_DLOPEN_ERRNO
}

setup() {
    mesa_env unix
    export LC_ALL=C TZ=UTC
    mount_cache # $MOUNT_CACHE: this test's own, empty
}

# lr SCRIPT [ARG0 ARG...]: sh -c SCRIPT ARG0 ARG... in repo libs under
# mesarun, time-limited, with the cache $MOUNT_CACHE (a fresh one per test).
lr() {
    mount_cache
    timeout -k 10 120 "$MESARUN" --cache-dir "$MOUNT_CACHE" --repo libs -- sh -c "$@"
}

# shell code: libfoo.so in lib/, and bin/prog linked against it (no path)
FOO='mkdir -p lib bin && gcc -shared -fPIC -o lib/libfoo.so foo.c && gcc -o bin/prog main.c -Llib -lfoo'

# ------------------------------------------------------------ searches

@test "a program linked against a library built in the mount runs with LD_LIBRARY_PATH into the mount; both stay local" {
    run lr "$FOO && LD_LIBRARY_PATH=/mesa/acme/libs/lib bin/prog"
    assert_success
    assert_output "foo=42"
    [ -f "$MOUNT_CACHE/local/acme/libs/b-main/lib/libfoo.so" ]
    [ -x "$MOUNT_CACHE/local/acme/libs/b-main/bin/prog" ]
    run server_has libs lib/libfoo.so
    assert_failure
    run server_has libs bin/prog
    assert_failure
}

@test "a program with a RUNPATH or an old-style RPATH into the mount finds its library there" {
    run lr "$FOO"' &&
        gcc -o bin/runpath main.c -Llib -lfoo -Wl,-rpath,/mesa/acme/libs/lib &&
        gcc -o bin/rpath main.c -Llib -lfoo -Wl,--disable-new-dtags,-rpath,/mesa/acme/libs/lib &&
        readelf -d bin/runpath | grep -c "(RUNPATH).*/mesa/acme/libs/lib" &&
        readelf -d bin/rpath | grep -c "(RPATH).*/mesa/acme/libs/lib" &&
        bin/runpath && bin/rpath'
    assert_success
    assert_output $'1\n1\nfoo=42\nfoo=42'
}

@test "\$ORIGIN in a program's RUNPATH is its directory in the mount, however it was run" {
    run lr "$FOO"' && gcc -o bin/origin main.c -Llib -lfoo -Wl,-rpath,\$ORIGIN/../lib &&
        bin/origin && (cd bin && ./origin) && PATH=/mesa/acme/libs/bin:$PATH origin &&
        /mesa/acme/libs/bin/origin'
    assert_success
    assert_output $'foo=42\nfoo=42\nfoo=42\nfoo=42'
}

@test "a library's own dependencies are found through its \$ORIGIN, and through the program's old-style RPATH" {
    run lr 'mkdir -p lib bin && gcc -shared -fPIC -o lib/libfoo.so foo.c &&
        gcc -shared -fPIC -o lib/libbar.so bar.c -Llib -lfoo -Wl,-rpath,\$ORIGIN &&
        gcc -shared -fPIC -o lib/libbar2.so bar.c -Llib -lfoo &&
        gcc -o bin/viaorigin mainbar.c -Llib -lbar -Wl,-rpath-link,lib -Wl,-rpath,/mesa/acme/libs/lib &&
        gcc -o bin/viarpath mainbar.c -Llib -lbar2 -Wl,-rpath-link,lib \
            -Wl,--disable-new-dtags,-rpath,/mesa/acme/libs/lib &&
        bin/viaorigin && bin/viarpath'
    assert_success
    assert_output $'bar=43\nbar=43'
}

@test "a program linked against a library of the mount by its path (no SONAME) finds it, absolute or relative to the virtual cwd" {
    run lr 'mkdir -p lib bin && gcc -shared -fPIC -o lib/libfoo.so foo.c &&
        gcc -o bin/byabs main.c /mesa/acme/libs/lib/libfoo.so && gcc -o bin/byrel main.c lib/libfoo.so &&
        readelf -d bin/byabs bin/byrel | sed -n "s/.*(NEEDED).*\[\(.*foo.*\)\]/\1/p" &&
        bin/byabs && bin/byrel'
    assert_success
    assert_output $'/mesa/acme/libs/lib/libfoo.so\nlib/libfoo.so\nfoo=42\nfoo=42'
}

@test "without a search path into the mount the program fails as natively: the loader's message, exit 127" {
    run -127 lr "$FOO && bin/prog"
    assert_output "bin/prog: error while loading shared libraries: libfoo.so: cannot open shared object file: No such file or directory"
}

@test "LD_LIBRARY_PATH keeps the loader's order between real directories and the mount" {
    mkdir -p "$BATS_TEST_TMPDIR/real"
    cc -shared -fPIC -DFOO=1 -o "$BATS_TEST_TMPDIR/real/libfoo.so" "$BATS_FILE_TMPDIR/src/foo.c"
    run lr "$FOO"' && LD_LIBRARY_PATH=$0:/mesa/acme/libs/lib bin/prog &&
        LD_LIBRARY_PATH=/mesa/acme/libs/lib:$0 bin/prog' "$BATS_TEST_TMPDIR/real"
    assert_success
    assert_output $'foo=1\nfoo=42'
}

# ------------------------------------------------------------ dlopen

@test "dlopen of a library in the mount, by absolute path or relative to the virtual cwd, calls into it; twice is one handle" {
    run lr "$FOO"' && gcc -o bin/dltest dltest.c &&
        bin/dltest /mesa/acme/libs/lib/libfoo.so lib/libfoo.so ./lib/../lib/libfoo.so &&
        cd lib && ../bin/dltest ./libfoo.so /mesa/acme/libs/lib/libfoo.so'
    assert_success
    assert_output $'foo=42 same=1\nfoo=42 same=1\nfoo=42 same=1\nfoo=42 same=1\nfoo=42 same=1'
}

@test "dlopen of a missing path in the mount fails as the real one: NULL, errno unchanged, dlerror names the path" {
    [ -n "$NATIVE_DLOPEN_ERRNO" ]
    run -1 lr 'mkdir -p bin lib && gcc -o bin/dltest dltest.c && bin/dltest /mesa/acme/libs/lib/libnope.so'
    assert_output "NULL errno=$NATIVE_DLOPEN_ERRNO
/mesa/acme/libs/lib/libnope.so: cannot open shared object file: No such file or directory"
    run -1 lr 'mkdir -p bin && gcc -o bin/dltest dltest.c && bin/dltest nodir/libnope.so'
    assert_output "NULL errno=$NATIVE_DLOPEN_ERRNO
nodir/libnope.so: cannot open shared object file: No such file or directory"
}

@test "dlopen of a bare name searches the calling program's RUNPATH and LD_LIBRARY_PATH in the mount" {
    run lr "$FOO"' && gcc -o bin/dltest dltest.c && gcc -o bin/dlrunpath dltest.c -Wl,-rpath,/mesa/acme/libs/lib &&
        LD_LIBRARY_PATH=/mesa/acme/libs/lib bin/dltest libfoo.so && bin/dltest libfoo.so'
    assert_failure 1
    assert_output "foo=42 same=1
NULL errno=$NATIVE_DLOPEN_ERRNO
libfoo.so: cannot open shared object file: No such file or directory"
    if [ -n "$SAN_PRELOAD" ]; then
        skip "sanitizer build: ASan's dlopen interceptor is the loader's caller, so the program's RUNPATH is not searched"
    fi
    run lr "$FOO"' && gcc -o bin/dlrunpath dltest.c -Wl,-rpath,/mesa/acme/libs/lib && bin/dlrunpath libfoo.so'
    assert_success
    assert_output "foo=42 same=1"
}

@test "dlopen of a path again after the library was rebuilt returns the loaded one; a new process loads the new one" {
    run lr "$FOO"' && gcc -o bin/dltest dltest.c &&
        bin/dltest lib/libfoo.so "!gcc -shared -fPIC -DFOO=7 -o lib/libfoo.so foo.c" lib/libfoo.so &&
        bin/dltest lib/libfoo.so && LD_LIBRARY_PATH=/mesa/acme/libs/lib bin/prog'
    assert_success
    assert_output $'foo=42 same=1\nfoo=42 same=1\nfoo=7 same=1\nfoo=7'
}

@test "Python C extensions built in the mount import from a sys.path entry in the mount, one using a library of the mount" {
    local inc
    inc=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    if [ ! -f "$inc/Python.h" ]; then
        skip "no $inc/Python.h (Debian: python3-dev)"
    fi
    run lr 'ext=$(python3 -c "import sysconfig; print(sysconfig.get_config_var(\"EXT_SUFFIX\"))") &&
        mkdir -p py lib && gcc -shared -fPIC -I"$0" -o "py/hello$ext" hello.c &&
        gcc -shared -fPIC -o lib/libfoo.so foo.c &&
        gcc -shared -fPIC -I"$0" -DWITH_FOO -o "py/hellofoo$ext" hello.c -Llib -lfoo -Wl,-rpath,\$ORIGIN/../lib &&
        python3 -c "import sys; sys.path.insert(0, \"/mesa/acme/libs/py\"); import hello, hellofoo
print(hello.answer(), hello.__file__); print(hellofoo.answer())" &&
        echo "$ext"' "$inc"
    assert_success
    local ext=${lines[2]}
    assert_line --index 0 "42 /mesa/acme/libs/py/hello$ext"
    assert_line --index 1 "142"
    run server_has libs "py/hello$ext"
    assert_failure
}

# ------------------------------------------------------------ tracked, cold

@test "a tracked library is pushed, and a second mesarun with an empty cache loads it (LD_LIBRARY_PATH, RUNPATH, dlopen)" {
    MOUNT_CACHE=$BATS_TEST_TMPDIR/warm run mr --repo tracked -- sh -c \
        'mkdir -p lib bin && gcc -shared -fPIC -o lib/libfoo.so foo.c &&
        gcc -o bin/plain main.c -Llib -lfoo && gcc -o bin/runpath main.c -Llib -lfoo -Wl,-rpath,/mesa/acme/tracked/lib &&
        gcc -o bin/dltest dltest.c'
    assert_success
    server_has tracked lib/libfoo.so
    server_has tracked bin/runpath
    local oid
    oid=$(server_oid tracked lib/libfoo.so)
    local c
    for c in 1 2 3; do
        mkdir "$BATS_TEST_TMPDIR/cold$c"
    done
    MOUNT_CACHE=$BATS_TEST_TMPDIR/cold1 run mr --repo tracked -- sh -c 'LD_LIBRARY_PATH=/mesa/acme/tracked/lib bin/plain'
    assert_success
    assert_output "foo=42"
    MOUNT_CACHE=$BATS_TEST_TMPDIR/cold2 run mr --repo tracked -- bin/runpath
    assert_success
    assert_output "foo=42"
    MOUNT_CACHE=$BATS_TEST_TMPDIR/cold3 run mr --repo tracked -- bin/dltest /mesa/acme/tracked/lib/libfoo.so
    assert_success
    assert_output "foo=42 same=1"
    for c in 1 2 3; do
        [ -f "$BATS_TEST_TMPDIR/cold$c/blobs/${oid:0:2}/$oid" ]
    done
}

# ------------------------------------------------------------ environment

@test "LD_AUDIT comes back for a program started with env -i, and its libraries in the mount are found" {
    run lr "$FOO"' && env -i /bin/sh -c "echo \$LD_AUDIT" && env -i LD_LIBRARY_PATH=/mesa/acme/libs/lib bin/prog'
    assert_success
    assert_line --index 0 --regexp '/libmesafs_audit\.so$'
    assert_line --index 1 "foo=42"
}

@test "MESA_AUDIT= runs a mount without the module: the loader's searches miss the mount, dlopen of a path still works" {
    MESA_AUDIT= run -127 lr "$FOO"' && gcc -o bin/dltest dltest.c && echo "audit=${LD_AUDIT:-none}" &&
        bin/dltest /mesa/acme/libs/lib/libfoo.so && LD_LIBRARY_PATH=/mesa/acme/libs/lib bin/prog'
    assert_line --index 0 "audit=none"
    assert_line --index 1 "foo=42 same=1"
    assert_line --index 2 --partial "libfoo.so: cannot open shared object file"
}
