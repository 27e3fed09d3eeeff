module github.com/prosody-pfe/prosody-pfe

go 1.26.8
