# Source me: export the fake provider server's key for every provider
# prefix that config/fake.yaml names (FAKE_KEY_<PREFIX>=fake-key-<prefix>).
_genq_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for _v in $(sed -n 's/^ *api_key_env: *\(FAKE_KEY_[A-Z0-9_]*\).*/\1/p' "$_genq_root/config/fake.yaml" | sort -u); do
        _ns=$(printf '%s' "${_v#FAKE_KEY_}" | tr 'A-Z_' 'a-z-')
        export "$_v=fake-key-$_ns"
done
unset _v _ns _genq_root
