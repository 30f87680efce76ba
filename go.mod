module auditplugin

go 1.26.0

require (
	github.com/dlclark/regexp2 v1.11.0
	github.com/elastic/go-libaudit/v2 v2.6.2
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
	golang.org/x/sys v0.49.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/elastic/go-licenser v0.4.1 // indirect
	golang.org/x/text v0.14.0 // indirect
)
