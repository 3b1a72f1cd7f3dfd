#!/bin/sh
# Count automake test results (*.trs under DIR) and print
# "N passed, N failed, N skipped"; list failing tests above it.
# Exit 1 if anything failed or no test ran.
dir=${1:-.}
find "$dir" -name '*.trs' | sort | while read -r f; do
    grep -h '^:test-result:' "$f" | sed "s|^|$f |"
done >"$dir/.results" 2>/dev/null
pass=$(grep -cE ':test-result: (PASS|XFAIL)' "$dir/.results")
fail=$(grep -cE ':test-result: (FAIL|XPASS|ERROR)' "$dir/.results")
skip=$(grep -c ':test-result: SKIP' "$dir/.results")
if [ "$fail" -gt 0 ]; then
    echo "failing:"
    for log in $(grep -lE ':test-result: (FAIL|XPASS|ERROR)' $(find "$dir" -name '*.trs')); do
        echo "  ${log%.trs}.log:"
        grep -E '^not ok' "${log%.trs}.log" | sed 's/^/    /' | head -20
    done
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
