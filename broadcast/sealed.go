package broadcast

import (
	"strconv"

	"github.com/careline/careline/reseal"
)

// SealedColumns are the sealed broadcast columns, for `careline storage reseal`.
func SealedColumns() []reseal.Column {
	return []reseal.Column{
		{Table: "careline_broadcast", Column: "values_sealed", Key: []string{"id"}, Context: func(v []string) string { return valuesContext(v[0]) }},
		{Table: "careline_broadcast_target", Column: "number_sealed", Key: []string{"broadcast_id", "position"}, Context: func(v []string) string {
			position, _ := strconv.Atoi(v[1])
			return numberContext(v[0], position)
		}},
	}
}
