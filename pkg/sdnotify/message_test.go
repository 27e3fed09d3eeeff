package sdnotify

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Message
		wantErr bool
	}{
		{name: "ready", in: "READY=1", want: Message{Ready: true, Fields: map[string]string{"READY": "1"}}},
		{
			name: "prosody reload",
			in:   "RELOADING=1\nMONOTONIC_USEC=123456789",
			want: Message{Reloading: true, MonotonicUsec: 123456789, Fields: map[string]string{"RELOADING": "1", "MONOTONIC_USEC": "123456789"}},
		},
		{name: "stopping", in: "STOPPING=1\n", want: Message{Stopping: true, Fields: map[string]string{"STOPPING": "1"}}},
		{
			name: "status keeps equals signs",
			in:   "STATUS=a=b c\nREADY=0",
			want: Message{Status: "a=b c", Fields: map[string]string{"STATUS": "a=b c", "READY": "0"}},
		},
		{name: "empty", in: "", want: Message{Fields: map[string]string{}}},
		{
			name:    "line without equals",
			in:      "READY=1\ngarbage",
			want:    Message{Ready: true, Fields: map[string]string{"READY": "1"}},
			wantErr: true,
		},
		{
			name:    "bad monotonic",
			in:      "MONOTONIC_USEC=soon",
			want:    Message{Fields: map[string]string{"MONOTONIC_USEC": "soon"}},
			wantErr: true,
		},
		{name: "empty key", in: "=1", want: Message{Fields: map[string]string{}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}
