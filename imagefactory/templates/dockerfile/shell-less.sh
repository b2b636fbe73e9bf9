#!/bin/bash
# The runtime closure of a shell-less image (distroless: in image.yaml; docs/images.md), run by
# the first stage of its Dockerfile as root. It lays out under $OUT exactly what the final
# `FROM scratch` stage copies:
#
#  * the files dpkg lists for the kept packages (those that still exist: path-excludes kept the
#    rest out), and a status.d/<package> entry for each (its dpkg-query -s paragraph), so the
#    SBOM, `outdated` and scanners see them. Kept: the packages of the Python interpreter the
#    venv runs (every hop of its symlink chain) and of its standard library, of every shared
#    library an ELF file of the venv or of the --path trees links (ldd), base-files
#    (os-release), ca-certificates, tzdata, media-types and netbase when installed, each
#    --package, and their Depends/Pre-Depends, except the dependencies on Essential packages
#    (the shell, coreutils, dpkg, perl-base …) and on apt, debconf, openssl and mawk (what
#    maintainer scripts need: none runs in a shell-less image);
#  * the venv, each --path tree, their parent folders, /tmp, /etc/ssl/certs, ld.so.cache;
#  * /etc/passwd and /etc/group with root and the --account users only.
#
# Arguments (each one word; the Dockerfile passes them through the sh filter):
#   --venv DIR  --path DIR_OR_FILE…  --account NAME…  --package NAME…
# It fails when the result holds a shell, perl, dpkg or apt, or a --package that is not installed.
set -euo pipefail
shopt -s nullglob

OUT=/imagefactory-final
ALIASES=(/bin /sbin /lib /lib32 /lib64 /libx32)
DROPPED=" apt debconf openssl mawk "
FORBIDDEN=(usr/bin/sh usr/bin/bash usr/bin/dash usr/bin/perl usr/bin/dpkg usr/bin/apt usr/bin/apt-get)

venv=""
paths=()
accounts=(root)
wanted=()
while (($#)); do
  case "$1" in
    --venv) venv=$2 ;;
    --path) paths+=("$2") ;;
    --account) accounts+=("$2") ;;
    --package) wanted+=("$2") ;;
    *) echo "shell-less: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done

fail() { echo "shell-less: $*" >&2; exit 1; }

# The dpkg database, read once: each installed package, the Essential ones, who provides a
# virtual name, who lists a path.
declare -A installed=() essential=() provider=() owner=()
while IFS='|' read -r state package flag provides; do
  [[ $state == installed ]] || continue
  installed[$package]=1
  [[ $flag == yes ]] && essential[$package]=1
  for name in ${provides//,/ }; do
    [[ $name == [a-z]* ]] && provider[$name]=${provider[$name]:-$package}
  done
done < <(dpkg-query -W -f='${db:Status-Status}|${Package}|${Essential}|${Provides}\n')
while IFS= read -r line; do
  file=${line%%.list:/*}
  package=${file##*/}
  owner[/${line#*.list:/}]=${package%%:*}
done < <(grep -H '' /var/lib/dpkg/info/*.list)

# The package that lists path $1 (or its merged-/usr twin); nothing when none does.
owners() {
  local twin
  case "$1" in /usr/*) twin=${1#/usr} ;; *) twin=/usr$1 ;; esac
  local found=${owner[$1]:-${owner[$twin]:-}}
  [[ -z $found ]] || echo "$found"
}

roots=()
for name in "${wanted[@]}"; do
  [[ -n ${installed[$name]:-} ]] || fail "keep_packages names $name, which the image does not have installed"
  roots+=("$name")
done
for name in base-files ca-certificates tzdata media-types netbase; do
  [[ -n ${installed[$name]:-} ]] && roots+=("$name")
done
extra=() # files outside every package that the closure needs (libraries pip or COPY brought)

python=""
for candidate in "${venv:+$venv/bin/python}" /usr/bin/python3; do
  if [[ -n $candidate && -e $candidate ]]; then python=$candidate; break; fi
done
if [[ -n $python ]]; then
  hop=$python
  for _ in 1 2 3 4 5 6 7 8; do # the interpreter's symlink chain: bin/python → python3 → python3.11
    while read -r name; do roots+=("$name"); done < <(owners "$hop")
    [[ -L $hop ]] || break
    target=$(readlink "$hop")
    [[ $target == /* ]] && hop=$target || hop=$(dirname "$hop")/$target
  done
  stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
  for file in "$stdlib"/*.py "$stdlib"/lib-dynload/*; do
    while read -r name; do roots+=("$name"); done < <(owners "$file")
  done
fi

# Every shared library the ELF files of the venv and of the --path trees link.
elf_libraries() {
  local file magic
  while IFS= read -r -d '' file; do
    IFS= read -r -n 4 -d '' magic < "$file" || true
    [[ $magic == $'\x7fELF' ]] || continue
    ldd "$file" 2>/dev/null | sed -n -e 's/.*=> \(\/[^ ]*\) (0x.*/\1/p' -e 's/^\t\(\/[^ ]*\) (0x.*/\1/p'
  done < <(find "$@" -type f -print0)
}
trees=("${paths[@]}")
[[ -n $venv && -d $venv ]] && trees+=("$venv")
if ((${#trees[@]})); then
  while read -r library; do
    found=$(owners "$library")
    if [[ -n $found ]]; then
      while read -r name; do roots+=("$name"); done <<< "$found"
    elif [[ $library != "${venv:-/nonexistent}"/* ]]; then
      extra+=("$library")
    fi
  done < <(elf_libraries "${trees[@]}" | sort -u)
fi

# The dependency closure of the roots (Depends and Pre-Depends; alternatives: the first installed).
declare -A kept=()
pending=("${roots[@]}")
while ((${#pending[@]})); do
  name=${pending[-1]%:*}
  unset 'pending[-1]'
  [[ -n ${kept[$name]:-} ]] && continue
  kept[$name]=1
  depends=$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$name")
  IFS=',' read -ra clauses <<< "$depends"
  for clause in "${clauses[@]}"; do
    IFS='|' read -ra alternatives <<< "$clause"
    for alternative in "${alternatives[@]}"; do
      read -r dependency _ <<< "$alternative"
      dependency=${dependency%:any}
      [[ -z $dependency ]] && continue
      [[ -n ${installed[$dependency]:-} ]] || dependency=${provider[$dependency]:-}
      [[ -z $dependency ]] && continue
      if [[ $DROPPED != *" $dependency "* && -z ${essential[$dependency]:-} ]]; then
        pending+=("$dependency")
      fi
      break
    done
  done
done

# Paths as the image holds them: /lib/x on merged /usr is /usr/lib/x (the links themselves kept).
canonical() {
  local alias
  for alias in "${ALIASES[@]}"; do
    if [[ -L $alias && ( $1 == "$alias" || $1 == "$alias"/* ) ]]; then
      [[ $1 == "$alias" ]] && { echo "$1"; return; }
      echo "/usr$1"
      return
    fi
  done
  echo "$1"
}
parents() { # the folders above $1, outermost first
  local path=$1 found=()
  while [[ $path == /*/* ]]; do path=${path%/*}; found=("$path" "${found[@]}"); done
  printf '%s\n' "${found[@]}"
}

list=$(mktemp)
{
  for alias in "${ALIASES[@]}"; do [[ -L $alias ]] && echo "$alias"; done
  echo /tmp
  for name in "${!kept[@]}"; do
    while IFS= read -r path; do
      [[ $path == /* && $path != /. ]] || continue
      [[ -e $path || -L $path ]] && canonical "$path"
    done < <(dpkg-query -L "$name")
  done
  for path in "${extra[@]}" /etc/ld.so.cache /etc/nsswitch.conf; do
    [[ -e $path ]] && canonical "$path" && parents "$(canonical "$path")"
  done
  for tree in "${trees[@]}" /etc/ssl/certs; do
    [[ -e $tree || -L $tree ]] || continue
    parents "$tree"
    find "$tree"
  done
} | sed 's|^/||' | sort -u > "$list"

rm -rf "$OUT"
mkdir -p "$OUT/etc" "$OUT/var/lib/dpkg/status.d"
tar -C / --no-recursion --verbatim-files-from -T "$list" -cf - | tar -C "$OUT" -xpf -
rm -f "$list"

for name in "${!kept[@]}"; do
  dpkg-query -s "$name" > "$OUT/var/lib/dpkg/status.d/$name"
done
getent passwd "${accounts[@]}" > "$OUT/etc/passwd"
groups=$(cut -d: -f4 "$OUT/etc/passwd" | sort -u)
# shellcheck disable=SC2086  # numeric ids, one word each
getent group $groups > "$OUT/etc/group"
chmod 0644 "$OUT/etc/passwd" "$OUT/etc/group"

for path in "${FORBIDDEN[@]}"; do
  if [[ -e $OUT/$path || -L $OUT/$path ]]; then
    fail "/$path would be in the image (from $(owners "/$path" | tr '\n' ' ')); it must not hold a shell or a package tool"
  fi
done
echo "shell-less: kept ${#kept[@]} packages: $(printf '%s\n' "${!kept[@]}" | sort | tr '\n' ' ')"
