#!/usr/bin/env bash
# Builds Debian 12's web server programs with the cage patches of this
# directory and installs them in place of Debian's (root, Debian 12).
#
#   patches/build.sh [TARGET...]            build (cached), TARGET: suexec, apr, php-fpm
#                                            (default: suexec apr)
#   patches/build.sh --install [TARGET...]  build, then divert Debian's files and install ours
#   patches/build.sh --uninstall            remove ours, restore Debian's files exactly
#   patches/build.sh --status               what is built and what is installed
#   patches/build.sh --variant TARGET CONFIG_DIR LIBDIR OUTDIR
#       compiles the target's programs from the cached tree with another cage
#       configuration directory and a runtime library directory (used by the
#       end-to-end tests; never installed by --install)
#   patches/build.sh --install-files TARGET OUTDIR
#       installs such a variant the way --install does (diverted)
#
# Sources come from `apt-get source` of the version dpkg has installed (deb-src
# lines for bookworm, bookworm-updates and bookworm-security are added once).
# Builds are cached under /var/cache/cage-build keyed by source version and a
# hash of the patch and of this script, so a second run takes seconds.
#
# Targets:
#   suexec   apache2-suexec-pristine and apache2-suexec-custom
#            (/usr/lib/apache2/suexec-pristine, /usr/lib/apache2/suexec-custom),
#            patches/apache2-suexec-cage.patch. suexec is a standalone
#            program (it links only libc, and now libcage); when the exact
#            source of the installed version cannot be fetched, it is built
#            from the nearest source of the same upstream series that can be,
#            and that is said loudly, recorded in BUILDINFO, and accepted only
#            when the built program reports exactly the compiled-in settings
#            (`suexec -V`) of the installed one.
#   apr      libapr1 (/usr/lib/ARCH/libapr-1.so.0.7.2), patches/apr-cage.patch:
#            children that APR starts as a caged user (apr_procattr_user_set:
#            mod_rewrite `prg:` maps with a user) enter the cage. A library
#            must match the installed version exactly: no fallback.
#   php-fpm  php8.2-fpm (/usr/sbin/php-fpm8.2), patches/php8.2-fpm-cage.patch:
#            workers of pools with `user =` enter the cage. Built with Debian's
#            own rules (debian/rules, the patch added to the quilt series),
#            from the exact source of the installed version only: a php-fpm
#            built from another version cannot load Debian's extensions.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${CAGE_BUILD_CACHE:-/var/cache/cage-build}
SRC_LIST=/etc/apt/sources.list.d/cage-deb-src.sources
DIVERT_SUFFIX=.distrib
ARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)

die() { echo "build.sh: $*" >&2; exit 1; }
say() { echo "build.sh: $*"; }

[ "$(id -u)" = 0 ] || die "needs root"
grep -q '^VERSION_CODENAME=bookworm' /etc/os-release || die "needs Debian 12 (bookworm)"

# --- sources -----------------------------------------------------------------

ensure_deb_src() {
    if [ ! -f "$SRC_LIST" ]; then
        cat >"$SRC_LIST" <<'EOF'
# Added by cage (patches/build.sh): sources of the Debian 12 packages it patches.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        apt-get update -qq
    elif ! apt-cache showsrc apache2 >/dev/null 2>&1; then
        apt-get update -qq
    fi
}

apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }

# fetch_source SRCPKG VERSION DIR: unpacks the source into DIR/SRCPKG-UPSTREAM,
# prints the directory. Fails when that version cannot be downloaded.
fetch_source() {
    local pkg=$1 ver=$2 dir=$3
    mkdir -p "$dir"
    (cd "$dir" && apt-get source -qq "$pkg=$ver" >"$dir/apt-get-source.log" 2>&1) || return 1
    local up=${ver#*:}
    up=${up%-*}
    [ -d "$dir/$pkg-$up" ] || return 1
    echo "$dir/$pkg-$up"
}

# Versions of source package PKG that apt knows, newest first.
source_versions() {
    apt-cache showsrc "$1" 2>/dev/null | awk '/^Version:/ {print $2}' | sort -u | sort -rV
}

hash_of() { cat "$@" | sha256sum | cut -c1-12; }

# --- suexec ------------------------------------------------------------------

SUEXEC_PATCH=$HERE/apache2-suexec-cage.patch
SUEXEC_FILES=(/usr/lib/apache2/suexec-pristine /usr/lib/apache2/suexec-custom)

suexec_key() {
    local ver=$1
    echo "apache2-$ver-$(hash_of "$SUEXEC_PATCH" "$0" "$REPO/include/libcage.h")"
}

# The compiled-in settings a suexec reports (it answers -V only to root and
# www-data, on stderr).
suexec_settings() { "$1" -V 2>&1; }

libcage_so() {
    local so
    for so in "$REPO/target/release/libcage.so" "/usr/lib/$ARCH/libcage.so"; do
        [ -f "$so" ] && { echo "$so"; return 0; }
    done
    die "libcage.so not found: run cargo build --workspace --release (or ci/install.sh) first"
}

# suexec_compile TREE CONFIG_DIR RPATH OUTDIR: builds both programs of the
# configured tree TREE against libcage; RPATH empty for the installed build
# (libcage.so then comes from the system library directory only).
suexec_compile() {
    local tree=$1 conf=$2 rpath=$3 out=$4 so libs
    so=$(libcage_so)
    # The support Makefile links without libraries, after LDFLAGS and
    # before the objects: --no-as-needed keeps libcage.so in DT_NEEDED.
    libs="-L$(dirname "$so") -Wl,--no-as-needed -lcage -Wl,--as-needed"
    [ -n "$rpath" ] && libs="$libs -Wl,-rpath,$rpath"
    rm -f "$tree/support/suexec.lo" "$tree/support/suexec-custom.lo" \
        "$tree/support/suexec-pristine" "$tree/support/suexec-custom"
    make -C "$tree/support" -s suexec-pristine suexec-custom \
        NOTEST_CPPFLAGS="-I$REPO/include -DCAGE_CONFIG_DIR='\"$conf\"'" \
        NOTEST_LDFLAGS="$libs" >"$out.make.log" 2>&1 || {
        tail -n 30 "$out.make.log" >&2
        die "compiling suexec failed (log: $out.make.log)"
    }
    mkdir -p "$out"
    local f
    for f in suexec-pristine suexec-custom; do
        local bin=$tree/support/.libs/$f
        [ -f "$bin" ] || bin=$tree/support/$f
        install -m 4754 -o root -g www-data "$bin" "$out/$f"
        readelf -d "$out/$f" | grep -q 'NEEDED.*\[libcage.so\]' ||
            die "$out/$f does not link libcage.so"
    done
}

build_suexec() {
    ensure_deb_src
    local ver
    ver=$(installed_version apache2-suexec-pristine)
    [ -n "$ver" ] || ver=$(installed_version apache2-bin)
    [ -n "$ver" ] || die "apache2 is not installed (apt-get install apache2 apache2-suexec-pristine apache2-suexec-custom)"
    apt_install apache2-suexec-pristine apache2-suexec-custom
    local key dir
    key=$(suexec_key "$ver")
    dir=$CACHE/$key
    if [ -f "$dir/BUILDINFO" ]; then
        say "suexec: cached build $dir"
        SUEXEC_BUILD=$dir
        return 0
    fi
    apt_install dpkg-dev build-essential libapr1-dev libaprutil1-dev libpcre2-dev patch
    local t0=$SECONDS work src srcver=$ver fallback=""
    # Built in place (a configured tree holds absolute paths); BUILDINFO,
    # written last, marks a complete build.
    work=$dir
    rm -rf "$work"
    mkdir -p "$work"
    if ! src=$(fetch_source apache2 "$ver" "$work/dl"); then
        local cand up=${ver%%-*}
        say "WARNING: the source of the installed apache2 $ver cannot be fetched ($(grep -m1 -o 'Failed to fetch.*' "$work/dl/apt-get-source.log" || echo 'apt-get source failed'))"
        for cand in $(source_versions apache2); do
            [ "$cand" = "$ver" ] && continue
            [ "${cand%.*}" = "${up%.*}" ] || continue
            rm -rf "${work:?}/dl"
            if src=$(fetch_source apache2 "$cand" "$work/dl"); then
                srcver=$cand
                fallback="installed $ver not fetchable"
                break
            fi
        done
        [ -n "$fallback" ] || die "no apache2 ${up%.*} source can be fetched: cannot build suexec"
        say "WARNING: building suexec from apache2 $srcver instead; accepted only if its compiled-in settings equal the installed suexec's"
    fi
    mv "$src" "$work/tree"
    src=$work/tree
    (
        cd "$src"
        # Debian's own rule (debian/rules: support/suexec-custom.c).
        cp support/suexec.c support/suexec-custom.c
        patch -s -p1 -i debian/patches/suexec-custom.patch
        patch -s -p1 -i "$SUEXEC_PATCH"
        patch -s support/suexec-custom.c <"$SUEXEC_PATCH"
        # Debian's configure options that concern suexec (debian/rules);
        # the modules are not built.
        eval "$(dpkg-buildflags --export=sh)"
        AWK=awk ./configure --enable-layout=Debian --enable-so --with-program-name=apache2 \
            --enable-suexec --with-suexec-caller=www-data \
            --with-suexec-bin=/usr/lib/apache2/suexec --with-suexec-docroot=/var/www \
            --with-suexec-userdir=public_html --with-suexec-logfile=/var/log/apache2/suexec.log \
            --with-suexec-uidmin=100 \
            --with-apr=/usr/bin/apr-1-config --with-apr-util=/usr/bin/apu-1-config \
            --with-pcre=/usr/bin/pcre2-config --enable-pie \
            --enable-mods-shared=none --enable-mods-static="unixd" \
            CFLAGS="-pipe $CFLAGS" LDFLAGS="-Wl,--as-needed $LDFLAGS" \
            SHELL=/bin/bash GREP=/bin/grep >"$work/configure.log" 2>&1 ||
            { tail -n 30 "$work/configure.log" >&2; exit 1; }
        # The generated headers the support programs need.
        make -s -C srclib >/dev/null 2>&1 || true
    ) || die "configuring apache2 $srcver failed (log: $work/configure.log)"
    local out=$work/out
    suexec_compile "$src" /etc/cage "" "$out"
    local f
    for f in suexec-pristine suexec-custom; do
        local want got
        want=$(suexec_settings "/usr/lib/apache2/$f$( [ -e "/usr/lib/apache2/$f$DIVERT_SUFFIX" ] && echo "$DIVERT_SUFFIX")")
        # Run as root, not set-id: the library path applies (only here).
        got=$(LD_LIBRARY_PATH=$(dirname "$(libcage_so)") suexec_settings "$out/$f" || true)
        [ "$want" = "$got" ] || die "$f built from apache2 $srcver reports other settings than Debian's:
$(diff <(echo "$want") <(echo "$got"))"
    done
    {
        echo "target=suexec"
        echo "installed_version=$ver"
        echo "source_version=$srcver"
        [ -n "$fallback" ] && echo "source_fallback=$fallback; compiled-in settings verified equal"
        echo "patch_sha256=$(sha256sum "$SUEXEC_PATCH" | cut -d' ' -f1)"
                echo "build_seconds=$((SECONDS - t0))"
    } >"$work/BUILDINFO.tmp"
    mv "$work/BUILDINFO.tmp" "$work/BUILDINFO"
    local old
    for old in "$CACHE"/apache2-"$ver"-*; do
        [ "$old" = "$dir" ] || rm -rf "$old"
    done
    say "suexec: built from apache2 $srcver in $((SECONDS - t0)) s: $dir"
    SUEXEC_BUILD=$dir
}


# --- apr ---------------------------------------------------------------------

APR_PATCH=$HERE/apr-cage.patch

apr_lib() { readlink -f "/usr/lib/$ARCH/libapr-1.so.0"; }

# The real file behind libapr-1.so.0 (not the diverted name).
apr_target() {
    local f
    f=$(dpkg -L libapr1 | grep -E "/libapr-1\.so\.0\.[0-9.]+$" | head -n 1)
    [ -n "$f" ] || die "libapr1 ships no libapr-1.so.0.*"
    echo "$f"
}

# apr_compile TREE CONFIG_DIR RPATH OUTDIR
apr_compile() {
    local tree=$1 conf=$2 rpath=$3 out=$4 so libs
    so=$(libcage_so)
    libs="-L$(dirname "$so") -lcage"
    [ -n "$rpath" ] && libs="$libs -Wl,-rpath,$rpath"
    rm -f "$tree/threadproc/unix/proc.lo" "$tree/threadproc/unix/proc.o" "$tree"/libapr-1.la
    make -C "$tree" -s -j"$(nproc)" libapr-1.la \
        NOTEST_CPPFLAGS="-I$REPO/include -DCAGE_CONFIG_DIR='\"$conf\"'" \
        NOTEST_LIBS="$libs" >"$out.make.log" 2>&1 || {
        tail -n 30 "$out.make.log" >&2
        die "compiling apr failed (log: $out.make.log)"
    }
    mkdir -p "$out"
    local base
    base=$(basename "$(apr_target)")
    install -m 644 "$tree/.libs/$base" "$out/$base"
    readelf -d "$out/$base" | grep -q 'NEEDED.*\[libcage.so\]' || die "$out/$base does not link libcage.so"
}

build_apr() {
    ensure_deb_src
    local ver key dir
    ver=$(installed_version libapr1)
    [ -n "$ver" ] || die "libapr1 is not installed"
    key="apr-$ver-$(hash_of "$APR_PATCH" "$0" "$REPO/include/libcage.h")"
    dir=$CACHE/$key
    if [ -f "$dir/BUILDINFO" ]; then
        say "apr: cached build $dir"
        APR_BUILD=$dir
        return 0
    fi
    apt_install dpkg-dev build-essential autoconf libtool uuid-dev python3 patch
    local t0=$SECONDS src
    rm -rf "$dir"
    mkdir -p "$dir"
    src=$(fetch_source apr "$ver" "$dir/dl") ||
        die "the source of the installed libapr1 $ver cannot be fetched ($(grep -m1 -o 'Failed to fetch.*' "$dir/dl/apt-get-source.log" || echo 'apt-get source failed')): libapr1 is not built (a library must match the installed version exactly)"
    mv "$src" "$dir/tree"
    (
        cd "$dir/tree"
        patch -s -p1 -i "$APR_PATCH"
        eval "$(dpkg-buildflags --export=sh)"
        export CFLAGS CPPFLAGS LDFLAGS
        LC_ALL=C ./buildconf >"$dir/configure.log" 2>&1
        # Debian's CONFFLAGS (debian/rules).
        CONFIG_SHELL=/bin/bash /bin/bash ./configure LTFLAGS=--no-silent \
            --enable-layout=Debian --includedir=/usr/include/apr-1.0 \
            --with-installbuilddir=/usr/share/apr-1.0/build --libdir="/usr/lib/$ARCH" \
            --enable-nonportable-atomics --enable-allocator-uses-mmap \
            ac_cv_prog_AWK=mawk >>"$dir/configure.log" 2>&1
    ) || { tail -n 30 "$dir/configure.log" >&2; die "configuring apr $ver failed (log: $dir/configure.log)"; }
    apr_compile "$dir/tree" /etc/cage "" "$dir/out"
    {
        echo "target=apr"
        echo "installed_version=$ver"
        echo "source_version=$ver"
        echo "patch_sha256=$(sha256sum "$APR_PATCH" | cut -d' ' -f1)"
        echo "build_seconds=$((SECONDS - t0))"
    } >"$dir/BUILDINFO.tmp"
    mv "$dir/BUILDINFO.tmp" "$dir/BUILDINFO"
    local old
    for old in "$CACHE"/apr-"$ver"-*; do
        [ "$old" = "$dir" ] || rm -rf "$old"
    done
    say "apr: built $ver in $((SECONDS - t0)) s: $dir"
    APR_BUILD=$dir
}

install_apr() {
    local from=${1:-$APR_BUILD/out} dest
    dest=$(apr_target)
    [ -n "${1:-}" ] || [ -f "/usr/lib/$ARCH/libcage.so" ] ||
        die "/usr/lib/$ARCH/libcage.so is missing: run ci/install.sh first"
    say "installed:"
    divert_install "$from/$(basename "$dest")" "$dest" 644 root:root
    ldconfig
}

# --- php-fpm -----------------------------------------------------------------

FPM_PATCH=$HERE/php8.2-fpm-cage.patch
FPM_BIN=/usr/sbin/php-fpm8.2

build_php_fpm() {
    ensure_deb_src
    local ver key dir
    ver=$(installed_version php8.2-fpm)
    [ -n "$ver" ] || die "php8.2-fpm is not installed"
    key="php8.2-$ver-$(hash_of "$FPM_PATCH" "$0" "$REPO/include/libcage.h")"
    dir=$CACHE/$key
    if [ -f "$dir/BUILDINFO" ]; then
        say "php-fpm: cached build $dir"
        FPM_BUILD=$dir
        return 0
    fi
    local t0=$SECONDS src
    rm -rf "$dir"
    mkdir -p "$dir"
    rm -f "$CACHE/php8.2.unavailable"
    src=$(fetch_source php8.2 "$ver" "$dir/dl") || {
        rm -rf "$dir"
        # Read by tests/e2e/71-fpm.sh to say why that flavour is skipped.
        echo "the source of the installed php8.2 $ver cannot be fetched (a php-fpm of another version cannot load Debian's extensions)" >"$CACHE/php8.2.unavailable"
        die "$(cat "$CACHE/php8.2.unavailable"): php-fpm8.2 is not built"
    }
    mv "$src" "$dir/tree"
    apt_install dpkg-dev build-essential devscripts equivs patch
    (cd "$dir/tree" && mk-build-deps -i -r -t 'apt-get -y -qq --no-install-recommends' debian/control) \
        >"$dir/build-deps.log" 2>&1 || die "installing the build dependencies of php8.2 failed (log: $dir/build-deps.log)"
    local so
    so=$(libcage_so)
    (
        cd "$dir/tree"
        cp "$FPM_PATCH" debian/patches/cage-fpm.patch
        echo cage-fpm.patch >>debian/patches/series
        # Debian's full build (every SAPI; php-fpm8.2 is one of them), with
        # libcage for the patched file.
        DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
            DEB_CPPFLAGS_APPEND="-I$REPO/include" \
            DEB_LDFLAGS_APPEND="-L$(dirname "$so") -Wl,--no-as-needed -lcage -Wl,--as-needed" \
            dpkg-buildpackage -b -uc -us -nc >"$dir/build.log" 2>&1
    ) || die "building php8.2 $ver failed (log: $dir/build.log)"
    local bin
    bin=$(find "$dir/tree/debian" -path '*/usr/sbin/php-fpm8.2' -type f | head -n 1)
    [ -n "$bin" ] || die "the php8.2 build produced no php-fpm8.2 (log: $dir/build.log)"
    mkdir -p "$dir/out"
    install -m 755 "$bin" "$dir/out/php-fpm8.2"
    readelf -d "$dir/out/php-fpm8.2" | grep -q 'NEEDED.*\[libcage.so\]' || die "php-fpm8.2 does not link libcage.so"
    {
        echo "target=php-fpm"
        echo "installed_version=$ver"
        echo "source_version=$ver"
        echo "patch_sha256=$(sha256sum "$FPM_PATCH" | cut -d' ' -f1)"
        echo "build_seconds=$((SECONDS - t0))"
    } >"$dir/BUILDINFO.tmp"
    mv "$dir/BUILDINFO.tmp" "$dir/BUILDINFO"
    say "php-fpm: built $ver in $((SECONDS - t0)) s: $dir"
    FPM_BUILD=$dir
}

install_php_fpm() {
    [ -f "/usr/lib/$ARCH/libcage.so" ] || die "/usr/lib/$ARCH/libcage.so is missing: run ci/install.sh first"
    say "installed:"
    divert_install "$FPM_BUILD/out/php-fpm8.2" "$FPM_BIN" 755 root:root
}

# --- install -----------------------------------------------------------------

# divert_install SRC DEST MODE OWNER: Debian's DEST is renamed to
# DEST.distrib through dpkg-divert (a package upgrade then updates that
# file, never ours), and SRC is installed at DEST.
# Where Debian's DEST is kept: beside it, except shared libraries, which go
# to a directory ldconfig never reads (beside the library, ldconfig would
# point the soname link at the diverted file).
diverted_name() {
    case $1 in
        *.so.*) echo "/usr/lib/cage/distrib/$(basename "$1")" ;;
        *) echo "$1$DIVERT_SUFFIX" ;;
    esac
}

divert_install() {
    local src=$1 dest=$2 mode=$3 owner=$4 kept
    kept=$(diverted_name "$dest")
    if ! dpkg-divert --list "$dest" | grep -q 'by cage$'; then
        mkdir -p "$(dirname "$kept")"
        dpkg-divert --quiet --package cage --divert "$kept" --rename --add "$dest"
    fi
    install -m "$mode" -o "${owner%:*}" -g "${owner#*:}" "$src" "$dest.cage-new"
    mv -f "$dest.cage-new" "$dest"
    echo "  $dest (Debian's kept as $kept)"
}

divert_remove() {
    local dest=$1
    dpkg-divert --list "$dest" | grep -q 'by cage$' || return 0
    rm -f "$dest"
    dpkg-divert --quiet --package cage --rename --remove "$dest"
    echo "  $dest restored"
}

install_suexec() {
    local from=${1:-$SUEXEC_BUILD/out}
    [ -x /usr/lib/apache2/suexec-pristine ] || [ -x "/usr/lib/apache2/suexec-pristine$DIVERT_SUFFIX" ] ||
        die "apache2-suexec-pristine is not installed"
    # The installed programs load libcage.so from the system directory only.
    [ -n "${1:-}" ] || [ -f "/usr/lib/$ARCH/libcage.so" ] ||
        die "/usr/lib/$ARCH/libcage.so is missing: run ci/install.sh first"
    say "installed:"
    local f
    for f in suexec-pristine suexec-custom; do
        divert_install "$from/$f" "/usr/lib/apache2/$f" 4754 root:www-data
    done
}

managed_files() {
    printf '%s\n' "${SUEXEC_FILES[@]}" "$FPM_BIN"
    apr_target 2>/dev/null || true
}

uninstall_all() {
    say "restored:"
    local f
    for f in $(managed_files); do divert_remove "$f"; done
    ldconfig
}

status() {
    local f
    for f in $(managed_files); do
        if dpkg-divert --list "$f" | grep -q 'by cage$'; then
            echo "$f: cage build (Debian's at $(diverted_name "$f"))"
        else
            echo "$f: Debian's"
        fi
    done
    local b
    for b in "$CACHE"/*/BUILDINFO; do
        [ -f "$b" ] || continue
        echo "cached: $(dirname "$b"): $(tr '\n' ' ' <"$b")"
    done
}

# --- main --------------------------------------------------------------------

action=build
case "${1:-}" in
    --install) action=install; shift ;;
    --uninstall) action=uninstall; shift ;;
    --status) action=status; shift ;;
    --variant) action=variant; shift ;;
    --install-files) action=install-files; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
mkdir -p "$CACHE"

case $action in
    uninstall) uninstall_all; exit 0 ;;
    status) status; exit 0 ;;
    variant)
        [ $# -eq 4 ] || die "usage: --variant TARGET CONFIG_DIR LIBDIR OUTDIR"
        case $1 in
            suexec)
                build_suexec >/dev/null
                suexec_compile "$SUEXEC_BUILD/tree" "$2" "$3" "$4"
                cp "$SUEXEC_BUILD/BUILDINFO" "$4/BUILDINFO"
                ;;
            apr)
                build_apr >/dev/null
                # A copy: the cached tree keeps the installed build's objects.
                rm -rf "$4.tree"
                cp -a "$APR_BUILD/tree" "$4.tree"
                apr_compile "$4.tree" "$2" "$3" "$4"
                rm -rf "$4.tree"
                cp "$APR_BUILD/BUILDINFO" "$4/BUILDINFO"
                ;;
            *) die "unknown target $1 (known: suexec, apr)" ;;
        esac
        exit 0
        ;;
    install-files)
        [ $# -eq 2 ] || die "usage: --install-files TARGET OUTDIR"
        case $1 in
            suexec) install_suexec "$2" ;;
            apr) install_apr "$2" ;;
            *) die "unknown target $1 (known: suexec, apr)" ;;
        esac
        exit 0
        ;;
esac

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(suexec apr)
for t in "${targets[@]}"; do
    case $t in
        suexec) build_suexec ;;
        apr) build_apr ;;
        php-fpm) build_php_fpm ;;
        *) die "unknown target $t (known: suexec, apr, php-fpm)" ;;
    esac
done
if [ "$action" = install ]; then
    for t in "${targets[@]}"; do
        case $t in
            suexec) install_suexec ;;
            apr) install_apr ;;
            php-fpm) install_php_fpm ;;
        esac
    done
fi
