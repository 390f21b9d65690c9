# A stand-in for a coding agent: it greets, repeats its prompt and says which python it has.
# It runs in the uploaded working dir (the default project path).
echo "$GREETING from an agent in a sandbox"
echo "prompt: $1"
echo "python: $(cat python-version.txt)"
