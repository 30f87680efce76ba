#!/bin/sh
# version.sh: the package version for the checkout in the current directory,
# from the same `git describe --tags --always --dirty` as the Makefile's
# VERSION, made valid for dpkg and rpm (both need a leading digit; rpm allows
# no "-" in a version) and ordered the way the commits are:
#   v1.2.3                 -> 1.2.3
#   v1.2.3-4-gabc1234      -> 1.2.3+4.gabc1234     (after 1.2.3, before 1.2.4)
#   abc1234 (no tag yet)   -> 0.0.0+git18.gabc1234 (18 = commits up to HEAD)
#   ...-dirty              -> ....dirty
# Not a git checkout: 0.0.0+dev.
set -eu
describe=$(git describe --tags --always --dirty 2>/dev/null) || { echo 0.0.0+dev; exit 0; }
dirty=
case $describe in *-dirty) dirty=.dirty describe=${describe%-dirty} ;; esac
# A bare commit hash may start with a digit too: a tag is there only if
# describe works without --always.
tag=$(git describe --tags --abbrev=0 2>/dev/null) || tag=
case $tag in
v[0-9]* | [0-9]*)
	describe=${describe#v}
	base=${describe%%-*}
	rest=
	[ "$base" != "$describe" ] && rest=+$(printf '%s' "${describe#"$base"-}" | tr -- '-' '.')
	v=$base$rest$dirty
	;;
*)
	v=0.0.0+git$(git rev-list --count HEAD).g$describe$dirty
	;;
esac
# Only the characters both formats accept.
printf '%s\n' "$v" | tr -c 'A-Za-z0-9.+~\n' '.'
